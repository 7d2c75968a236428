import Guest
import Glibc
import VMM

/// The child side of `swvmm bench boot`: at the first KVM_RUN, print when it
/// happened (CLOCK_MONOTONIC is system-wide, so the parent can subtract its own
/// spawn time), when each start-up step finished, the peak RSS and how much of
/// it is guest RAM; then exit at once.
enum BootTiming {
    /// The line prefixes the parent parses.
    static let marker = "swvmm-first-entry"
    static let stepMarker = "swvmm-startup-step"

    static func reportFirstEntryAndExit(machine: Machine) {
        let now = Guest.monotonicNanoseconds()
        var text = ""
        for (step, nanoseconds) in machine.timeline.marks {
            text += "\(stepMarker) monotonic-ns=\(nanoseconds) \(step)\n"
        }
        text += "\(marker) monotonic-ns=\(now) guest-resident-bytes=\(machine.memory.residentBytes())"
        text += " peak-rss-bytes=\(HostPlatform.peakResidentBytes())\n"
        writeAll(STDOUT_FILENO, text)
        _exit(ExitStatus.success)
    }
}
