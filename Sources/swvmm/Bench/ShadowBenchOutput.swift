import Glibc
import Guest
import VMM

/// The Markdown table `swvmm bench shadow` prints on stdout.
enum ShadowBenchTable {
    static func markdown(_ rows: [ShadowBenchRow], setUp: ShadowSetUpTimes?) -> String {
        let header = ["tool", "native ms", "redirected s", "memoized s", "slowdown", "memoized slowdown", "redirected", "local",
                      "notifications", "transitions/call", "memoized transitions/call", "other vCPU int.", "host µs/call", "seccomp RT µs"]
        var lines = ["| " + header.joined(separator: " | ") + " |",
                     "|" + header.indices.map { $0 == 0 ? " --- |" : " ---: |" }.joined()]
        for row in rows {
            let times: [String] = [
                row.nativeSeconds.map { formatted($0 * 1000, digits: 2) } ?? "n/a", formatted(row.redirectedSeconds, digits: 3),
                row.memoizedSeconds.map { formatted($0, digits: 3) } ?? "n/a",
                row.slowdown.map { formatted($0, digits: 0) + "x" } ?? "n/a", row.memoizedSlowdown.map { formatted($0, digits: 0) + "x" } ?? "n/a",
            ]
            let counts: [String] = ["\(row.redirectedCalls)", "\(row.localCalls)", "\(row.notifications)"]
            let costs: [String] = [
                row.transitionsPerCallFirst.map { formatted($0, digits: 2) } ?? "n/a",
                row.transitionsPerCallMemoized.map { formatted($0, digits: 3) } ?? "n/a",
                row.otherVCPUInterruptions.map { "\($0)" } ?? "n/a", formatted(row.hostMicrosecondsPerCall, digits: 1),
                formatted(row.seccompRoundTripMicroseconds, digits: 2),
            ]
            let cells = [row.tool] + times + counts + costs
            lines.append("| " + cells.map { $0.replacing("|", with: "\\|") }.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append("Times are medians; counts are the first run's. redirected: the one-call path (--one-call); memoized: "
            + "the fast path after one training run (read-ahead and the memo's batches). transitions/call: target transitions "
            + "(GDB stops, shadow vCPU exits) per redirected call; host µs/call: supervisor time minus target time (guest calls, region reads and writes) per "
            + "redirected call on the one-call path.")
        for row in rows { if let note = row.nativeNote { lines.append("No native time for \(row.tool): \(note).") } }
        if let setUp {
            lines.append("")
            lines.append("Shadow process set-up (median of \(setUp.samples)): bootstrap \(formatted(setUp.bootstrapSeconds * 1000, digits: 1)) ms "
                + "(--stop-shadow, then a run); reconnect to an existing S \(formatted(setUp.reconnectSeconds * 1000, digits: 2)) ms (to the go-ahead).")
        }
        return lines.joined(separator: "\n")
    }
}

/// This host's side of results.json, and writing the three files.
enum ShadowBenchHost {
    /// swvmm has no release numbering yet; the git commit says which build ran.
    static let swvmmVersion = "development"

    static func environment(guestKernel: String, targetKind: String, targetAddress: String, guestCPUs: Int?, nativeWhere: String,
                            runs: Int) -> ShadowBenchEnvironment {
        ShadowBenchEnvironment(hostCPU: hostCPUModel(), hostKernel: hostKernel(),
                               hostHypervisor: HostPlatform.hypervisorSignature, guestKernel: guestKernel,
                               swvmmVersion: swvmmVersion, gitCommit: gitCommit(), targetKind: targetKind,
                               targetAddress: targetAddress, guestCPUs: guestCPUs, nativeWhere: nativeWhere, date: utcDate(), runs: runs)
    }

    /// Writes results.csv, results.json and chart.svg into `directory` (made if missing).
    static func write(rows: [ShadowBenchRow], environment: ShadowBenchEnvironment, setUp: ShadowSetUpTimes?,
                      into directory: String) throws {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw ShadowBenchOutputError.systemCall("mkdir", path: directory, errno: errno)
        }
        let title = "swvmm shadow through \(environment.targetKind) (guest \(environment.guestKernel)), \(environment.date)"
        try writeFile(directory + "/results.csv", ShadowBenchCSV.text(rows))
        try writeFile(directory + "/results.json", ShadowBenchJSON.text(rows: rows, environment: environment, setUp: setUp))
        try writeFile(directory + "/chart.svg", ShadowBenchChart.text(rows: rows, title: title))
    }

    private static func writeFile(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ShadowBenchOutputError.systemCall("open", path: path, errno: errno) }
        defer { close(fd) }
        if let failure = writeAll(fd, text) { throw ShadowBenchOutputError.systemCall("write", path: path, errno: failure) }
    }

    /// The first "model name" of /proc/cpuinfo.
    static func hostCPUModel() -> String {
        for line in HostPlatform.readProcFile("/proc/cpuinfo").split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return String(line[line.index(after: colon)...]).trimmed(of: " \t") }
        }
        return "unknown"
    }

    /// uname(2)'s release and machine.
    static func hostKernel() -> String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(field(names.sysname)) \(field(names.release)) \(field(names.machine))"
    }

    /// The commit of the tree this binary was built in (its directory's git), when there is one.
    static func gitCommit() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let executable = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = String(executable[..<(executable.lastIndex(of: "/") ?? executable.endIndex)])
        guard let git = try? ChildProcess.spawn("/usr/bin/env", ["git", "-C", directory, "rev-parse", "HEAD"]) else { return nil }
        let (output, status) = git.finish(limit: 4096)
        let commit = output.trimmed(of: " \n")
        guard status == 0, commit.count == 40, commit.allSatisfy(\.isHexDigit) else { return nil }
        return commit
    }

    /// Now, ISO 8601 in UTC.
    static func utcDate() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Why the result files could not be written.
enum ShadowBenchOutputError: Error, CustomStringConvertible {
    case systemCall(String, path: String, errno: Int32)

    var description: String {
        switch self {
        case let .systemCall(call, path, code): return "\(call) \(path): \(errnoText(code))"
        }
    }
}
