import ArgumentParser
import VMM

/// `swvmm`: boot Linux on raw KVM, and inspect guests from the host.
@main
struct SwVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swvmm",
        abstract: "A minimal hypervisor on /dev/kvm that boots Linux, and inspects guests through shadow context.",
        discussion: """
        With no subcommand, swvmm runs a guest: swvmm --kernel bzImage [--initrd initramfs.cpio.gz]. The terminal is the guest's serial console; press Ctrl-A then x to quit.

        Exit status:
          \(ExitStatus.success)   the guest reset or powered off, or you quit
          \(ExitStatus.failure)   swvmm could not start: bad input, no /dev/kvm
          \(ExitStatus.guestFailed)   the guest crashed its vCPU (triple fault, KVM error)
          \(ExitStatus.platformLimit)   this host's KVM cannot emulate what the guest ran
          \(ExitStatus.usage)  command-line usage error
        """,
        subcommands: [RunCommand.self, ShadowCommand.self, ImageInfoCommand.self, BenchCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

extension MemorySize: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}
