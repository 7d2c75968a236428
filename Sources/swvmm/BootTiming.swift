import Glibc
import VMM

/// The child side of `swvmm bench boot`: at the first KVM_RUN, print when it
/// happened (CLOCK_MONOTONIC is system-wide, so the parent can subtract its
/// own spawn time) and how much guest RAM is resident, then exit at once.
enum BootTiming {
    /// The line prefix the parent parses.
    static let marker = "swvmm-first-entry"

    static func reportFirstEntryAndExit(machine: Machine) {
        let now = MonotonicClock.nanoseconds()
        let resident = machine.memory.residentBytes()
        let line = "\(marker) monotonic-ns=\(now) guest-resident-bytes=\(resident)\n"
        _ = line.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
        _exit(ExitStatus.success)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
