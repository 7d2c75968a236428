import Guest
import MicroVM
import VMM

/// Exits per second on the run loop's path (KVM_RUN, decode, port bus
/// dispatch), with a micro-guest that does nothing but `out` in a loop.
enum ExitRate {
    /// mov dx, 0x80; l: out dx, al; jmp l   (port 0x80: the POST diagnostic port)
    static let portWriteLoop: [UInt8] = [0x66, 0xBA, 0x80, 0x00, 0xEE, 0xEB, 0xFD]

    static func measure(exits: Int) throws -> (userMode: Double, kernelMode: Double) {
        (try rate(cpl: 3, exits: max(1, exits)), try rate(cpl: 0, exits: max(1, exits / 100)))
    }

    private static func rate(cpl: UInt8, exits: Int) throws -> Double {
        let vm = try MicroVM()
        try vm.load(portWriteLoop)
        let vcpu = try vm.addVCPU(cpl: cpl)
        let bus = PortIOBus()
        try bus.register(IgnoredPorts(), name: "POST diagnostic", base: DevicePorts.postDiagnostic, length: 1)
        let start = Guest.monotonicNanoseconds()
        for _ in 0..<exits {
            guard case let .portIO(io) = try vcpu.run() else { throw ExitRateError.unexpectedExit }
            bus.dispatch(io)
        }
        let seconds = Double(Guest.monotonicNanoseconds() - start) / 1e9
        return Double(exits) / seconds
    }

    enum ExitRateError: Error, CustomStringConvertible {
        case unexpectedExit
        var description: String { "the exit-rate micro-guest left its port I/O loop" }
    }
}
