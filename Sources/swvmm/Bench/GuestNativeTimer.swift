import Glibc
import Guest

/// Times the bench's tools inside the guest through its serial console: the
/// same host binaries, which `make images` copies with their libraries into
/// the guest's /bench/bin (images/bench-tools.sh; boot the guest with
/// `reference-guest.sh --bench`). Each run is timed in the guest between
/// two readings of the host's `date +%s%N` (also in /bench/bin), less the
/// median of the same with no tool between them: what starting `date`
/// itself costs there.
final class GuestNativeTimer {
    private let console: SerialConsoleClient
    /// The guest's /bench/SHA256SUMS: binary name to SHA-256.
    private var guestHashes: [String: String] = [:]
    /// Median seconds between the two readings with nothing between them.
    private(set) var baselineSeconds = 0.0

    /// How long one command in the guest may take (a tool under QEMU/TCG).
    static let commandTimeout: Duration = .seconds(300)
    /// Readings of the empty baseline.
    static let baselineRuns = 5
    /// The guest's directory of host binaries, and its list of their hashes.
    static let directory = "/bench/bin"
    static let hashList = "/bench/SHA256SUMS"

    /// Connects to the console at `path` and reads the guest's hash list.
    init(consolePath path: String) throws {
        console = try SerialConsoleClient(socketPath: path, timeout: .seconds(10))
        var hashes: [String: String] = [:]
        for line in try run("cat \(Self.hashList) 2>/dev/null").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, fields[0].utf8.count == 64 { hashes[String(fields[1])] = String(fields[0]) }
        }
        guestHashes = hashes
    }

    /// Median seconds of `runs` runs of `tool` in the guest, after one
    /// untimed run (the binary and its libraries in the guest's page cache),
    /// or why it cannot be timed there.
    func time(_ tool: [String], runs: Int) throws -> Result<Double, NativeUnavailable> {
        if let reason = unavailable(tool[0]) { return .failure(reason) }
        if baselineSeconds == 0 {
            var empty: [Double] = []
            for _ in 0 ..< Self.baselineRuns {
                guard case .success(let seconds) = try timedRun(":") else { break }
                empty.append(seconds)
            }
            baselineSeconds = median(empty)
        }
        let command = ([Self.directory + "/" + tool[0]] + tool.dropFirst()).map(Self.quoted).joined(separator: " ")
        if case .failure(let reason) = try timedRun(command) { return .failure(reason) }
        var samples: [Double] = []
        for _ in 0 ..< runs {
            switch try timedRun(command) {
            case .success(let seconds): samples.append(max(0, seconds - baselineSeconds))
            case .failure(let reason): return .failure(reason)
            }
        }
        return .success(median(samples))
    }

    /// Why `program` cannot be timed in the guest, if it cannot: the guest
    /// has no copy, or its copy is not this host's binary.
    private func unavailable(_ program: String) -> NativeUnavailable? {
        guard let binary = Self.hostBinary(program) else { return .notOnThisHost(program) }
        let name = String(binary.split(separator: "/").last ?? "")
        guard let guestHash = guestHashes[name] else { return .notInTheGuest(program) }
        guard let hostHash = Self.sha256(of: binary), hostHash == guestHash else { return .differentBinary(program) }
        return nil
    }

    /// Runs `command` between the two readings; seconds between them.
    private func timedRun(_ command: String) throws -> Result<Double, NativeUnavailable> {
        let environment = shadowBenchEnvironment.filter { !$0.hasPrefix("PATH=") }.joined(separator: " ")
        let date = "\(Self.directory)/date +%s%N"
        let output = try run("( cd / && export \(environment) && t0=$(\(date)) && \(command) >/dev/null 2>&1; s=$?; "
                             + "t1=$(\(date)); echo \"swvmm-nat\"\"ive $s $((t1 - t0))\" )")
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("swvmm-native ") }) else {
            return .failure(.noResult(String(output.suffix(200))))
        }
        let fields = line.split(separator: " ")
        guard fields.count == 3, let status = Int(fields[1]), let nanoseconds = Int64(fields[2]), nanoseconds >= 0 else {
            return .failure(.noResult(String(line)))
        }
        guard status == 0 else { return .failure(.failed(status: status)) }
        return .success(Double(nanoseconds) / 1e9)
    }

    /// Types `command` and returns what it printed: the lines after the
    /// echo of the command, up to an end marker typed split in two so that
    /// the echo never matches it.
    private func run(_ command: String) throws -> String {
        let id = String(UInt64.random(in: 0 ... UInt64.max), radix: 16)
        try console.type("\(command); echo \"swvmm-e\"\"nd-\(id)\"\n")
        let text = try console.read(until: "swvmm-end-\(id)", timeout: Self.commandTimeout)
        // By bytes: "\r\n" is one Character, which splitting a String on "\n" would not cut.
        let lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0.filter { $0 != UInt8(ascii: "\r") }, as: UTF8.self) }
        let start = (lines.lastIndex { $0.contains("nd-\(id)\"") } ?? -1) + 1
        return lines[min(start, lines.count)...].dropLast().joined(separator: "\n")
    }

    /// `text` in single quotes for the guest's shell.
    static func quoted(_ text: String) -> String { "'" + text.replacing("'", with: "'\\''") + "'" }

    /// The file `program` runs on this host (PATH of the bench's environment, links resolved).
    static func hostBinary(_ program: String) -> String? {
        let path = shadowBenchEnvironment.first { $0.hasPrefix("PATH=") }?.dropFirst(5) ?? ""
        for directory in path.split(separator: ":") {
            guard let resolved = realpath("\(directory)/\(program)", nil) else { continue }
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return nil
    }

    /// SHA-256 of `file` as sha256sum prints it (nil: it could not run).
    static func sha256(of file: String) -> String? {
        guard let child = try? ChildProcess.spawn("/usr/bin/sha256sum", [file]) else { return nil }
        let (output, status) = child.finish()
        guard status == 0, let hash = output.split(separator: " ").first, hash.utf8.count == 64 else { return nil }
        return String(hash)
    }
}

/// Why a tool has no native time from the guest (results.json says it).
enum NativeUnavailable: Error, Equatable, CustomStringConvertible {
    case notOnThisHost(String)
    case notInTheGuest(String)
    case differentBinary(String)
    case failed(status: Int)
    case noResult(String)

    var description: String {
        switch self {
        case .notOnThisHost(let program): return "\(program) is not installed on this host"
        case .notInTheGuest(let program):
            return "the guest has no \(program) in \(GuestNativeTimer.directory) (make images; reference-guest.sh --bench)"
        case .differentBinary(let program):
            return "the guest's copy of \(program) is not this host's binary (make images again)"
        case .failed(let status): return "it exited with status \(status) in the guest"
        case .noResult(let output): return "the guest's console gave no time: \(output)"
        }
    }
}
