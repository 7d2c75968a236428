import CKVM
import Glibc
import Synchronization

/// One virtual CPU (the fd KVM_CREATE_VCPU returns) and its shared `kvm_run` area.
///
/// `run()` is called from the vCPU's own thread. Any other thread may call
/// `requestExit()` to make a running or about-to-run KVM_RUN return promptly.
public final class VirtualCPU: @unchecked Sendable {
    /// The vCPU index, which is also its initial local APIC id.
    public let id: Int
    let fd: FileDescriptor
    /// The VM this vCPU belongs to; kept alive as long as the vCPU.
    public let machine: VirtualMachine
    private let runArea: UnsafeMutablePointer<kvm_run>
    private let runAreaSize: Int
    /// The thread currently inside `run()`, for `requestExit()`'s signal.
    private let runningThread = Mutex<pthread_t?>(nil)

    init(fd: FileDescriptor, id: Int, runAreaSize: Int, machine: VirtualMachine) throws {
        self.fd = fd
        self.id = id
        self.machine = machine
        self.runAreaSize = runAreaSize
        guard runAreaSize >= MemoryLayout<kvm_run>.size else {
            throw KVMError.invalidArgument("KVM's vCPU run area (\(runAreaSize) bytes) is smaller than struct kvm_run")
        }
        let area = mmap(nil, runAreaSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.raw, 0)
        guard let area, area != MAP_FAILED else { throw KVMError.runAreaMapFailed(errno: errno) }
        runArea = area.bindMemory(to: kvm_run.self, capacity: 1)
        VirtualCPU.installKickHandler()
    }

    deinit {
        munmap(UnsafeMutableRawPointer(runArea), runAreaSize)
    }

    // MARK: Register state

    /// General-purpose registers, rip and rflags (KVM_GET_REGS).
    public func registers() throws -> kvm_regs { try get(CKVM_GET_REGS, "KVM_GET_REGS", kvm_regs()) }

    /// KVM_SET_REGS.
    public func setRegisters(_ registers: kvm_regs) throws { try set(CKVM_SET_REGS, "KVM_SET_REGS", registers) }

    /// Segment, control and descriptor-table registers (KVM_GET_SREGS).
    public func specialRegisters() throws -> kvm_sregs { try get(CKVM_GET_SREGS, "KVM_GET_SREGS", kvm_sregs()) }

    /// KVM_SET_SREGS.
    public func setSpecialRegisters(_ registers: kvm_sregs) throws { try set(CKVM_SET_SREGS, "KVM_SET_SREGS", registers) }

    /// x87/SSE state (KVM_GET_FPU).
    public func floatingPointState() throws -> kvm_fpu { try get(CKVM_GET_FPU, "KVM_GET_FPU", kvm_fpu()) }

    /// KVM_SET_FPU.
    public func setFloatingPointState(_ state: kvm_fpu) throws { try set(CKVM_SET_FPU, "KVM_SET_FPU", state) }

    /// The in-kernel local APIC's register page (KVM_GET_LAPIC).
    public func localAPIC() throws -> kvm_lapic_state { try get(CKVM_GET_LAPIC, "KVM_GET_LAPIC", kvm_lapic_state()) }

    /// KVM_SET_LAPIC.
    public func setLocalAPIC(_ state: kvm_lapic_state) throws { try set(CKVM_SET_LAPIC, "KVM_SET_LAPIC", state) }

    /// Whether the vCPU can run or waits (KVM_GET_MP_STATE), in kvm.h's words.
    public func runState() throws -> String {
        let state = try get(CKVM_GET_MP_STATE, "KVM_GET_MP_STATE", kvm_mp_state()).mp_state
        // KVM_MP_STATE_* (include/uapi/linux/kvm.h), the x86 ones.
        let names: [UInt32: String] = [0: "runnable", 1: "uninitialized", 2: "INIT received", 3: "halted", 4: "SIPI received"]
        return names[state] ?? "state \(state)"
    }

    /// A KVM_GET_* ioctl that fills one struct.
    private func get<State>(_ request: UInt, _ operation: String, _ empty: State) throws -> State {
        var state = empty
        try fd.ioctl(request, &state, operation)
        return state
    }

    /// A KVM_SET_* ioctl that takes one struct.
    private func set<State>(_ request: UInt, _ operation: String, _ state: State) throws {
        var copy = state
        try fd.ioctl(request, &copy, operation)
    }

    /// Reads the MSRs named in `indices` (KVM_GET_MSRS); KVM stops at the first it cannot read.
    public func modelSpecificRegisters(_ indices: [UInt32]) throws -> [UInt32: UInt64] {
        let table = MSRTable(entries: indices.map { ($0, 0) })
        let read = try fd.ioctl(CKVM_GET_MSRS, table.pointer, "KVM_GET_MSRS")
        var values: [UInt32: UInt64] = [:]
        for (index, value) in table.entries.prefix(Int(read)) { values[index] = value }
        return values
    }

    /// Writes MSRs (KVM_SET_MSRS); throws if KVM accepted fewer than all of them.
    public func setModelSpecificRegisters(_ entries: [(index: UInt32, value: UInt64)]) throws {
        let table = MSRTable(entries: entries)
        let written = try fd.ioctl(CKVM_SET_MSRS, table.pointer, "KVM_SET_MSRS")
        guard Int(written) == entries.count else {
            let rejected = entries[Int(written)].index
            throw KVMError.invalidArgument("KVM_SET_MSRS rejected MSR 0x\(String(rejected, radix: 16))")
        }
    }

    /// KVM_SET_CPUID2: what CPUID reports inside the guest.
    public func setCPUID(_ entries: [kvm_cpuid_entry2]) throws {
        let table = CPUIDTable(entries: entries)
        try fd.ioctl(CKVM_SET_CPUID2, table.pointer, "KVM_SET_CPUID2")
    }

    /// KVM_SET_GUEST_DEBUG with `control` flags (`KVM_GUESTDBG_*`).
    public func setGuestDebug(control: UInt32) throws {
        var debug = kvm_guest_debug()
        debug.control = control
        try fd.ioctl(CKVM_SET_GUEST_DEBUG, &debug, "KVM_SET_GUEST_DEBUG")
    }

    // MARK: Running

    /// Enters the guest until the next exit (KVM_RUN) and decodes why it came back.
    ///
    /// Returns `.interrupted` when another thread called `requestExit()`; the
    /// request stays in force (every later `run()` returns at once) until
    /// `clearExitRequest()`.
    public func run() throws -> VMExit {
        runningThread.withLock { $0 = pthread_self() }
        defer { runningThread.withLock { $0 = nil } }
        while true {
            let result = ckvm_ioctl_value(fd.raw, CKVM_RUN, 0)
            if result == 0 { return VMExit.decode(runArea, runAreaSize: runAreaSize) }
            switch errno {
            case EINTR: return .interrupted
            case EAGAIN: continue
            case let code: throw KVMError.ioctlFailed(operation: "KVM_RUN", errno: code)
            }
        }
    }

    /// Makes this vCPU's current or next KVM_RUN return `.interrupted`: sets
    /// `immediate_exit` (covers the window before the ioctl) and signals the
    /// vCPU thread (covers a guest already running).
    public func requestExit() {
        runArea.pointee.immediate_exit = 1
        runningThread.withLock { thread in
            if let thread { pthread_kill(thread, VirtualCPU.kickSignal) }
        }
    }

    /// Undoes `requestExit()` so the vCPU can run again.
    public func clearExitRequest() {
        runArea.pointee.immediate_exit = 0
    }

    /// The signal that kicks a vCPU thread out of KVM_RUN. Its handler does
    /// nothing; it exists so the signal interrupts the ioctl with EINTR
    /// instead of killing the process.
    static let kickSignal = SIGUSR1

    private static let kickHandlerInstalled: Bool = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0 // no SA_RESTART: KVM_RUN must come back with EINTR
        return sigaction(kickSignal, &action, nil) == 0
    }()

    private static func installKickHandler() { _ = kickHandlerInstalled }
}

/// A `struct kvm_msrs` with its flexible array of `kvm_msr_entry` (kvm.h).
final class MSRTable {
    let pointer: UnsafeMutableRawPointer
    private let count: Int

    init(entries: [(index: UInt32, value: UInt64)]) {
        count = entries.count
        let size = MemoryLayout<kvm_msrs>.size + count * MemoryLayout<kvm_msr_entry>.stride
        pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        pointer.assumingMemoryBound(to: kvm_msrs.self).pointee.nmsrs = UInt32(count)
        for (offset, entry) in entries.enumerated() {
            var msr = kvm_msr_entry()
            msr.index = entry.index
            msr.data = entry.value
            (pointer + MemoryLayout<kvm_msrs>.size).storeBytes(of: msr, toByteOffset: offset * MemoryLayout<kvm_msr_entry>.stride, as: kvm_msr_entry.self)
        }
    }

    deinit { pointer.deallocate() }

    var entries: [(UInt32, UInt64)] {
        (0..<count).map {
            let msr = (pointer + MemoryLayout<kvm_msrs>.size).load(fromByteOffset: $0 * MemoryLayout<kvm_msr_entry>.stride, as: kvm_msr_entry.self)
            return (msr.index, msr.data)
        }
    }
}
