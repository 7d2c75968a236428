import Guest
import ArgumentParser
import Glibc
import VMM

/// `swvmm bench boot`: start-up time to the first KVM_RUN, resident memory
/// beside a Swift hello-world, and exits per second of the run loop's path.
struct BootBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Start-up time, memory overhead (vs a Swift hello-world) and VM exits per second."
    )

    @Option(help: "Kernel to load (only loading is timed; the guest never runs).")
    var kernel = "images/out/bzImage-tiny"
    @Option(help: "Initramfs to load.")
    var initrd = "images/out/initramfs.cpio.gz"
    @Option(help: "Guest RAM.", transform: { try MemorySize(parsing: $0) })
    var memory = MemorySize(bytes: 512 << 20)
    @Option(help: "Runs of each process measurement (medians are reported).")
    var runs = 10
    @Option(help: "Port I/O exits to time at CPL 3 (CPL 0 runs 1/100 of them).")
    var exits = 200_000

    func run() throws {
        let executable = try reportingErrors { try Executable.current() }
        let baseline = Executable.sibling(of: executable, named: "swvmm-hello-baseline")
        guard access(baseline, X_OK) == 0 else {
            printError("swvmm: \(baseline) is missing: build the whole package (`swift build` or `make`)")
            throw ExitCode(ExitStatus.failure)
        }
        let arguments = ["run", "--kernel", kernel, "--initrd", initrd, "--memory", memory.description, "--exit-at-first-entry"]
        var startups: [Double] = [], swvmmRSS: [Double] = [], helloRSS: [Double] = []
        var stepTimes: [String: [Double]] = [:], stepOrder: [String] = []
        for _ in 0..<max(1, runs) {
            let start = Guest.monotonicNanoseconds()
            let child = try reportingErrors { try ChildProcess.spawn(executable, arguments) }
            let result = child.finish()
            guard let report = FirstEntryReport(parsing: result.output) else {
                printError("swvmm: the measured swvmm did not reach KVM_RUN (exit status \(result.status >> 8)); try `swvmm run \(arguments.dropFirst().dropLast().joined(separator: " "))`")
                throw ExitCode(ExitStatus.failure)
            }
            startups.append(Double(report.monotonicNanoseconds &- start) / 1e6)
            swvmmRSS.append(Double(report.peakRSSBytes &- min(report.peakRSSBytes, report.guestResidentBytes)))
            var previous = start
            for (step, time) in report.steps + [("start the vCPU thread, enter KVM_RUN", report.monotonicNanoseconds)] {
                if stepTimes[step] == nil { stepOrder.append(step) }
                stepTimes[step, default: []].append(Double(time &- previous) / 1e6)
                previous = time
            }
            let hello = try reportingErrors { try ChildProcess.spawn(baseline, []) }.finish()
            guard let helloKiB = hello.output.split(separator: "\n").first(where: { $0.hasPrefix("peak-rss-kb=") })
                .flatMap({ Double($0.dropFirst("peak-rss-kb=".count)) }) else {
                printError("swvmm: the hello-world baseline did not report its peak RSS")
                throw ExitCode(ExitStatus.failure)
            }
            helloRSS.append(helloKiB * 1024)
        }
        let exitRates = try reportingErrors { try ExitRate.measure(exits: exits) }

        let mib = 1024.0 * 1024.0
        let rssRatio = median(swvmmRSS) / median(helloRSS)
        print("swvmm bench boot: \(max(1, runs)) runs each, medians; \(kernel), \(memory) RAM")
        print("  process start -> first KVM_RUN      \(formatted(median(startups))) ms       (goal < 5 ms)")
        for (index, step) in stepOrder.enumerated() {
            let label = index == 0 ? "exec, runtime, parse arguments, " + step : step
            print("    \(formatted(median(stepTimes[step] ?? []))) ms  \(label)")
        }
        print("  swvmm peak RSS without guest RAM    \(formatted(median(swvmmRSS) / mib)) MiB")
        print("  Swift hello-world peak RSS          \(formatted(median(helloRSS) / mib)) MiB")
        print("  ratio swvmm / hello-world           \(formatted(rssRatio))x        (goal <= 2x)")
        print("  port I/O exits/s, guest at CPL 3    \(formatted(exitRates.userMode, digits: 0))")
        print("  port I/O exits/s, guest at CPL 0    \(formatted(exitRates.kernelMode, digits: 0))")
        print("  ratio CPL 3 / CPL 0                 \(formatted(exitRates.userMode / exitRates.kernelMode))x"
              + (HostPlatform.hasHardwareVirtualization ? "" : "   (no VT-x/AMD-V here: CPL 0 guest code is emulated)"))
    }
}

/// What a `--exit-at-first-entry` child printed (see `BootTiming`).
struct FirstEntryReport {
    let monotonicNanoseconds: UInt64
    let guestResidentBytes: UInt64
    let peakRSSBytes: UInt64
    /// Start-up steps in order, with the time each finished.
    let steps: [(String, UInt64)]

    init?(parsing output: String) {
        let lines = output.split(separator: "\n")
        guard let line = lines.first(where: { $0.hasPrefix(BootTiming.marker + " ") }) else { return nil }
        let fields = FirstEntryReport.fields(line)
        guard let time = fields["monotonic-ns"], let resident = fields["guest-resident-bytes"],
              let peak = fields["peak-rss-bytes"] else { return nil }
        monotonicNanoseconds = time
        guestResidentBytes = resident
        peakRSSBytes = peak
        steps = lines.filter { $0.hasPrefix(BootTiming.stepMarker + " ") }.compactMap { line in
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count == 3, let time = FirstEntryReport.fields(words[1])["monotonic-ns"] else { return nil }
            return (String(words[2]), time)
        }
    }

    /// `key=value` pairs (decimal values) in `text`.
    private static func fields(_ text: Substring) -> [String: UInt64] {
        var fields: [String: UInt64] = [:]
        for pair in text.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = UInt64(parts[1]) { fields[String(parts[0])] = value }
        }
        return fields
    }
}

/// Paths of this program and the programs built beside it.
enum Executable {
    static func current() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw ChildProcess.SpawnError.failed(path: "/proc/self/exe", errno: errno) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func sibling(of path: String, named name: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[...slash]) + name
    }
}
