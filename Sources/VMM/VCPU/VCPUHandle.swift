import Dispatch
import Guest
import Synchronization

/// Where one vCPU's thread stands.
public enum VCPUState: Sendable, Equatable, CustomStringConvertible {
    /// The thread enters the guest whenever it can.
    case running
    /// The thread stays out of KVM_RUN and waits for events: the vCPU's
    /// registers are still, and `perform` may read or change them.
    case paused
    /// The thread has ended with the machine. Final.
    case stopped

    public var description: String {
        switch self {
        case .running: return "running"
        case .paused: return "paused"
        case .stopped: return "stopped"
        }
    }
}

/// What a vCPU's thread can be told; each is carried out on that thread, out
/// of KVM_RUN, in the order sent (Firecracker's `VcpuEvent` is the model).
public enum VCPUEvent: Sendable {
    /// Leave the guest and stay out until `.resume`.
    case pause
    /// Enter the guest again (after `.pause`, or after an exit handler paused it).
    case resume
    /// Run `body` on the vCPU's own thread while it is out of KVM_RUN (KVM
    /// wants per-vCPU state such as MSRs set from there); the state stays as it was.
    case perform(@Sendable (VirtualCPU) throws -> Void)
}

/// What an exit handler did with an exit it was handed.
public enum ExitDisposition: Sendable, Equatable {
    /// Dealt with: enter the guest again.
    case handled
    /// Dealt with: pause this vCPU (it stays out of KVM_RUN until `.resume`).
    case pause
    /// Not this handler's: the machine's own handling applies.
    case notHandled
}

/// Sees a vCPU's exits before the machine's own handling, on that vCPU's thread.
/// The exit's buffers are valid only during the call.
public typealias ExitHandler = @Sendable (VMExit, VirtualCPU) -> ExitDisposition

/// Errors controlling one vCPU.
public enum VCPUControlError: Error, Equatable, CustomStringConvertible {
    /// The vCPU's thread has ended (the machine stopped).
    case stopped(vcpu: Int)
    /// The vCPU's thread did not take the event within the time allowed.
    case noResponse(vcpu: Int, event: String, waitedMilliseconds: Int)
    /// A `.perform` body threw.
    case performFailed(vcpu: Int, message: String)

    public var description: String {
        switch self {
        case let .stopped(vcpu): return "vCPU \(vcpu) has stopped with the machine"
        case let .noResponse(vcpu, event, waited): return "vCPU \(vcpu) did not take '\(event)' within \(waited) ms"
        case let .performFailed(vcpu, message): return "on vCPU \(vcpu): \(message)"
        }
    }
}

/// One vCPU's control: a small state machine (running, paused, stopped)
/// driven by events that its own thread carries out between KVM_RUN calls.
/// Any thread may `send`; the vCPU's thread is the only one that changes state.
///
/// This is how one vCPU is paused while the others run on, resumed, given a
/// job on its own thread, or handed its exits (`exitHandler`).
public final class VCPUHandle: Sendable {
    /// The vCPU this handle drives.
    public let vcpu: VirtualCPU

    private struct Request: Sendable {
        let event: VCPUEvent
        let reply: Reply
    }

    private struct Mailbox {
        var state: VCPUState = .running
        var pending: [Request] = []
        var pauses = 0
        var events = 0
        var exits = 0
        var exitHandler: ExitHandler?
        /// When the thread last entered KVM_RUN, and when (and how) it last came out.
        var lastEntry: UInt64?
        var lastExit: (name: String, at: UInt64)?
    }

    private let mailbox = Mutex(Mailbox())
    /// Signalled once per event sent: wakes the thread while it is paused.
    private let wakeUp = DispatchSemaphore(value: 0)

    init(vcpu: VirtualCPU) {
        self.vcpu = vcpu
    }

    /// The vCPU index.
    public var id: Int { vcpu.id }

    /// The current state.
    public var state: VCPUState { mailbox.withLock { $0.state } }

    /// How many times this vCPU went from running to paused.
    public var pauseCount: Int { mailbox.withLock { $0.pauses } }

    /// How many events this vCPU's thread has carried out (each one a trip
    /// out of the guest: a pause, a resume, a job on its thread).
    public var eventCount: Int { mailbox.withLock { $0.events } }

    /// How many exits this vCPU has taken (including `.interrupted`).
    public var exitCount: Int { mailbox.withLock { $0.exits } }

    /// The handler that sees this vCPU's exits first (nil: the machine's own handling only).
    public var exitHandler: ExitHandler? {
        get { mailbox.withLock { $0.exitHandler } }
        set { mailbox.withLock { $0.exitHandler = newValue } }
    }

    /// Sends `event` and waits until the vCPU's thread has carried it out;
    /// returns the state after it. A vCPU inside the guest is kicked out of
    /// KVM_RUN first, so this returns within microseconds on a live machine.
    /// Not from the vCPU's own thread (it would wait for itself): an exit
    /// handler returns `.pause` instead.
    /// - Throws: `VCPUControlError` when the machine has stopped, the thread
    ///   does not answer within `timeout`, or a `.perform` body fails.
    @discardableResult
    public func send(_ event: VCPUEvent, timeout: Duration = .seconds(5)) throws -> VCPUState {
        let reply = Reply()
        let accepted = mailbox.withLock { box -> Bool in
            guard box.state != .stopped else { return false }
            box.pending.append(Request(event: event, reply: reply))
            return true
        }
        guard accepted else { throw VCPUControlError.stopped(vcpu: id) }
        kick()
        let milliseconds = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard reply.wait(milliseconds: milliseconds) else {
            throw VCPUControlError.noResponse(vcpu: id, event: "\(event.name)", waitedMilliseconds: milliseconds)
        }
        return try reply.result(vcpu: id)
    }

    // MARK: The vCPU's own thread

    /// Carries out every pending event, in order; returns the state to go on in.
    func takeEvents() -> VCPUState {
        while true {
            let next: Request? = mailbox.withLock { box in
                guard !box.pending.isEmpty else { return nil }
                box.events += 1
                return box.pending.removeFirst()
            }
            guard let request = next else { return state }
            var failure: String?
            switch request.event {
            case .pause: enterPause()
            case .resume: mailbox.withLock { if $0.state == .paused { $0.state = .running } }
            case let .perform(body):
                do { try body(vcpu) } catch { failure = "\(error)" }
            }
            request.reply.complete(state: state, failure: failure)
        }
    }

    /// Pauses from the vCPU's own thread (an exit handler asked for it).
    func enterPause() {
        mailbox.withLock { box in
            if box.state == .running { box.state = .paused; box.pauses += 1 }
        }
    }

    /// Blocks the paused thread until an event arrives (or `limit` passes).
    func waitForEvent(limit: Duration = .milliseconds(100)) {
        let nanoseconds = Int(limit.components.seconds) * 1_000_000_000 + Int(limit.components.attoseconds / 1_000_000_000)
        _ = wakeUp.wait(timeout: .now() + .nanoseconds(nanoseconds))
    }

    /// Notes that the thread enters KVM_RUN now.
    func recordEntry() {
        let now = monotonicNanoseconds()
        mailbox.withLock { $0.lastEntry = now }
    }

    /// Counts one exit and returns the handler to offer it to.
    func recordExit(_ name: String) -> ExitHandler? {
        let now = monotonicNanoseconds()
        return mailbox.withLock { box in
            box.exits += 1
            box.lastExit = (name, now)
            return box.exitHandler
        }
    }

    /// Where the guest stands on this vCPU: its run state (halted,
    /// runnable), rip and privilege level, read on the vCPU's own thread
    /// (one trip out of the guest); nil when the thread does not answer within `timeout`.
    public func guestPosition(timeout: Duration = .seconds(2)) -> String? {
        let seen = Mutex<String?>(nil)
        _ = try? send(.perform { vcpu in
            let state = try vcpu.runState(), regs = try vcpu.registers(), sregs = try vcpu.specialRegisters()
            seen.withLock { $0 = "\(state) at rip \(regs.rip.guestHex) (cpl \(sregs.cs.dpl))" }
        }, timeout: timeout)
        return seen.withLock { $0 }
    }

    /// Where the thread stands now and since when: in the guest, or out of
    /// it since its last exit. Tells a guest that stopped making exits
    /// (halted, hung) from a thread held up in swvmm.
    public var activity: VCPUActivity {
        let now = monotonicNanoseconds()
        return mailbox.withLock { box in
            VCPUActivity(id: id, state: box.state, exits: box.exits, now: now, lastEntry: box.lastEntry, lastExit: box.lastExit)
        }
    }

    /// Makes the thread look at the machine again: out of KVM_RUN, or awake if paused.
    func kick() {
        vcpu.requestExit()
        wakeUp.signal()
    }

    /// The thread is ending: the state becomes final and waiting senders are answered.
    func finish() {
        let orphans = mailbox.withLock { box -> [Request] in
            box.state = .stopped
            defer { box.pending.removeAll() }
            return box.pending
        }
        orphans.forEach { $0.reply.complete(state: .stopped, failure: nil) }
    }
}

extension VCPUEvent {
    var name: String {
        switch self {
        case .pause: return "pause"
        case .resume: return "resume"
        case .perform: return "perform"
        }
    }
}

/// One event's answer, from the vCPU's thread to the sender.
private final class Reply: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<(state: VCPUState, failure: String?)?>(nil)

    func complete(state: VCPUState, failure: String?) {
        outcome.withLock { $0 = (state, failure) }
        done.signal()
    }

    func wait(milliseconds: Int) -> Bool {
        done.wait(timeout: .now() + .milliseconds(milliseconds)) == .success
    }

    func result(vcpu: Int) throws -> VCPUState {
        guard let answer = outcome.withLock({ $0 }) else { throw VCPUControlError.stopped(vcpu: vcpu) }
        if let failure = answer.failure { throw VCPUControlError.performFailed(vcpu: vcpu, message: failure) }
        if answer.state == .stopped { throw VCPUControlError.stopped(vcpu: vcpu) }
        return answer.state
    }
}
