import Glibc
import Synchronization

/// A value shared between a test and the threads it starts.
final class LockedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }
}

/// What each vCPU thread of a test saw.
final class ThreadResults: @unchecked Sendable {
    private let state: Mutex<(ports: [[UInt16]], threadIDs: [pthread_t])>
    init(count: Int) { state = Mutex((Array(repeating: [], count: count), Array(repeating: 0, count: count))) }
    func record(_ index: Int, ports: [UInt16], threadID: pthread_t) {
        state.withLock { $0.ports[index] = ports; $0.threadIDs[index] = threadID }
    }
    var ports: [[UInt16]] { state.withLock { $0.ports } }
    var threadIDs: [pthread_t] { state.withLock { $0.threadIDs } }
}
