import CKVM

/// Direction of a port I/O exit, as the guest sees it.
public enum PortIODirection: Sendable, Equatable {
    /// The guest executed `in`/`ins`: swvmm must fill the data buffer.
    case read
    /// The guest executed `out`/`outs`: the data buffer holds what it wrote.
    case write
}

/// A guest port access that KVM handed to user space.
public struct PortIOExit {
    public let direction: PortIODirection
    public let port: UInt16
    /// Bytes per access: 1, 2 or 4.
    public let size: Int
    /// Repetitions (string instructions `rep ins/outs`).
    public let count: Int
    /// `size * count` bytes inside the vCPU's run area; valid until the next KVM_RUN.
    public let data: UnsafeMutableRawBufferPointer
}

/// A guest access to an address no memory slot backs.
public struct MMIOExit {
    public let address: UInt64
    public let isWrite: Bool
    /// 1 to 8 bytes inside the run area; for reads, swvmm writes the value here.
    public let data: UnsafeMutableRawBufferPointer
}

/// Why KVM_RUN returned: every `KVM_EXIT_*` reason of kvm.h swvmm handles,
/// decoded once, so the run loop is one `switch`.
public enum VMExit {
    case portIO(PortIOExit)
    case mmio(MMIOExit)
    /// The guest executed `hlt` with interrupts the in-kernel LAPIC does not handle for it.
    case halt
    /// Triple fault (or another reason the CPU shut down).
    case shutdown
    /// KVM could not continue: `suberror` 1 is an emulation failure (`KVM_INTERNAL_ERROR_EMULATION`).
    case internalError(suberror: UInt32, data: [UInt64])
    /// VM entry failed; `reason` is the hardware's code (VMX exit qualification / SVM exit code).
    case failedEntry(reason: UInt64, cpu: UInt32)
    /// A debug exception swvmm asked for with KVM_SET_GUEST_DEBUG.
    case debug(exception: UInt32, pc: UInt64, dr6: UInt64, dr7: UInt64)
    /// A guest-initiated event such as reset or power-off through PSCI/ACPI (`KVM_SYSTEM_EVENT_*`).
    case systemEvent(type: UInt32)
    /// A guest exception KVM reflected to user space.
    case exception(vector: UInt32, errorCode: UInt32)
    /// KVM_RUN returned because of a signal or `immediate_exit` (EINTR / KVM_EXIT_INTR).
    case interrupted
    /// Any other reason, by number.
    case other(reason: UInt32)

    /// kvm.h's name for this exit, for traces and histograms.
    public var name: String {
        switch self {
        case let .portIO(io): return io.direction == .read ? "IO_IN" : "IO_OUT"
        case let .mmio(mmio): return mmio.isWrite ? "MMIO_WRITE" : "MMIO_READ"
        case .halt: return "HLT"
        case .shutdown: return "SHUTDOWN"
        case .internalError: return "INTERNAL_ERROR"
        case .failedEntry: return "FAIL_ENTRY"
        case .debug: return "DEBUG"
        case .systemEvent: return "SYSTEM_EVENT"
        case .exception: return "EXCEPTION"
        case .interrupted: return "INTR"
        case let .other(reason): return "EXIT_\(reason)"
        }
    }
}

extension VMExit {
    /// Decodes `run` after KVM_RUN returned 0. `runAreaSize` bounds the data
    /// offset KVM reports, so a bad value can never point outside the mapping.
    static func decode(_ run: UnsafeMutablePointer<kvm_run>, runAreaSize: Int) -> VMExit {
        let base = UnsafeMutableRawPointer(run)
        switch run.pointee.exit_reason {
        case CKVM_EXIT_IO:
            let io = run.pointee.io
            let size = Int(io.size), count = Int(io.count)
            let length = size * count
            guard io.data_offset <= UInt64(runAreaSize), length <= runAreaSize - Int(io.data_offset) else {
                return .other(reason: CKVM_EXIT_IO)
            }
            let data = UnsafeMutableRawBufferPointer(start: base + Int(io.data_offset), count: length)
            let direction: PortIODirection = UInt32(io.direction) == CKVM_EXIT_IO_IN ? .read : .write
            return .portIO(PortIOExit(direction: direction, port: io.port, size: size, count: count, data: data))
        case CKVM_EXIT_MMIO:
            let mmio = run.pointee.mmio
            let length = min(Int(mmio.len), 8)
            return .mmio(MMIOExit(address: mmio.phys_addr, isWrite: mmio.is_write != 0,
                                  data: UnsafeMutableRawBufferPointer(start: base + CKVM_RUN_MMIO_DATA_OFFSET, count: length)))
        case CKVM_EXIT_HLT:
            return .halt
        case CKVM_EXIT_SHUTDOWN:
            return .shutdown
        case CKVM_EXIT_INTERNAL_ERROR:
            let failure = run.pointee.internal
            let count = min(Int(failure.ndata), 16)
            let data = withUnsafeBytes(of: failure.data) { Array($0.bindMemory(to: UInt64.self).prefix(count)) }
            return .internalError(suberror: failure.suberror, data: data)
        case CKVM_EXIT_FAIL_ENTRY:
            let failure = run.pointee.fail_entry
            return .failedEntry(reason: failure.hardware_entry_failure_reason, cpu: failure.cpu)
        case CKVM_EXIT_DEBUG:
            let debug = run.pointee.debug.arch
            return .debug(exception: debug.exception, pc: debug.pc, dr6: debug.dr6, dr7: debug.dr7)
        case CKVM_EXIT_SYSTEM_EVENT:
            return .systemEvent(type: run.pointee.system_event.type)
        case CKVM_EXIT_EXCEPTION:
            return .exception(vector: run.pointee.ex.exception, errorCode: run.pointee.ex.error_code)
        case CKVM_EXIT_INTR:
            return .interrupted
        default:
            return .other(reason: run.pointee.exit_reason)
        }
    }
}
