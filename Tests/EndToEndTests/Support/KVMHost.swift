import Foundation
import XCTest

/// The KVM host (images/kvm-host.sh): runs a batch, a bash script, where
/// /dev/kvm is hardware-assisted KVM. On a host with VT-x/AMD-V that is here;
/// elsewhere it is a QEMU/TCG L1 with emulated AMD SVM that sees this host's
/// file system read-only, and each run boots one L1 (about 8 s before the
/// batch starts), so a test class runs all its guests in one batch.
enum KVMHost {
    static let script = Swvmm.packageRoot.appendingPathComponent("images/kvm-host.sh")
    /// kvm-host.sh's own statuses (the command's status otherwise).
    static let l1FailedStatus: Int32 = 125
    static let timedOutStatus: Int32 = 124

    /// True when batches run directly on this host (vmx or svm in /proc/cpuinfo).
    static var runsDirectly: Bool {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return cpuinfo.split(whereSeparator: \.isNewline).contains { line in
            line.hasPrefix("flags") && line.split(separator: " ").contains { $0 == "vmx" || $0 == "svm" }
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The L1 itself went down while the command ran (kvm-host.sh says so
        /// first, before its reset report and console tail), or hung until the
        /// timeout (an L1 seen idle for 20 minutes, its batch never finishing).
        var l1Died = false
    }

    /// kvm-host.sh's words for an L1 that went down under the command.
    static let l1DiedMessage = "the L1 died while the command ran"

    struct Result {
        var stdout: String
        /// The batch's stderr, plus kvm-host.sh's own lines ("kvm-host: ...").
        var stderr: String
        var status: Int32
        var signaled: Bool
        var seconds: Double
        /// The scratch directory's files after the run, by path relative to it
        /// (kvm-host.sh's own .kvm-host/ folder left out).
        var files: [String: Data]
        /// The L1's console (kernel messages, the init's markers); empty when
        /// the batch ran directly.
        var console: String
        /// The scratch directory (removed by now); QEMU's command line names it.
        var scratch: String

        func text(_ name: String) -> String? { files[name].map { String(decoding: $0, as: UTF8.self) } }

        var summary: String {
            """
            kvm-host.sh -> \(signaled ? "killed by signal" : "exit status") \(status) after \(String(format: "%.1f", seconds)) s
            --- stderr (tail) ---
            \(String(stderr.suffix(3000)))
            --- stdout (tail) ---
            \(String(stdout.suffix(3000)))
            --- L1 console (tail) ---
            \(String(console.suffix(2000)))
            """
        }
    }

    /// Skips only when the L1 is needed and QEMU is not installed.
    static func requireAvailable() throws {
        if !runsDirectly, !FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") {
            throw XCTSkip("no VT-x/AMD-V here and qemu-system-x86_64 is not installed for the KVM host (apt-get install qemu-system-x86)")
        }
    }

    /// Runs `batch` through kvm-host.sh and throws `Failure` when the KVM host
    /// itself failed (status 125) or the run timed out (124).
    static func run(batch: String, memory: String? = nil, timeout: TimeInterval = 600,
                    environment: [String: String] = [:]) throws -> Result {
        try requireAvailable()
        let result = try runAllowingFailure(batch: batch, memory: memory, timeout: timeout, environment: environment)
        if result.status == l1FailedStatus || result.status == timedOutStatus || result.signaled {
            throw Failure(description: "the KVM host failed\n\(result.summary)",
                          l1Died: result.stderr.contains(l1DiedMessage) || result.status == timedOutStatus)
        }
        return result
    }

    /// Runs whole attempts of `body` while the emulated L1 itself dies under
    /// them (QEMU/TCG with nested SVM: its 6.12 kernel oopses or triple-faults
    /// at random, shared/PLATFORM.md), at most `attempts` times, saying so.
    static func retryingL1Deaths<T>(_ what: String, attempts: Int = 3, _ body: () throws -> T,
                                     died: (Error) -> Bool) throws -> T {
        for attempt in 1 ..< max(attempts, 1) {
            do {
                return try body()
            } catch where died(error) {
                print("\(what): the KVM host died (attempt \(attempt) of \(attempts)); running it once more\n\(String("\(error)".suffix(1500)))")
            }
        }
        return try body()
    }

    /// Runs `batch` and returns however it ended (for tests of kvm-host.sh itself).
    static func runAllowingFailure(batch: String, memory: String? = nil, timeout: TimeInterval = 600,
                                   environment: [String: String] = [:], options: [String] = []) throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("swvmm-kvmhost-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let batchFile = scratch.appendingPathComponent(".batch.sh")
        try Data(("set -u\n" + batch).utf8).write(to: batchFile)

        let process = Process()
        // If this test process dies, the script gets SIGTERM and takes QEMU down with it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        var arguments = ["--pdeathsig", "TERM", "/bin/bash", script.path, "--scratch", scratch.path, "--timeout", "\(Int(timeout))"]
        if let memory { arguments += ["--memory", memory] }
        process.arguments = arguments + options + ["--", "/bin/bash", batchFile.path]
        process.currentDirectoryURL = Swvmm.packageRoot
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let outCollector = PipeCollector(out.fileHandleForReading)
        let errCollector = PipeCollector(err.fileHandleForReading)
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        // The script bounds itself; this only guards against a hung script.
        if finished.wait(timeout: .now() + timeout + 60) == .timedOut {
            kill(process.processIdentifier, SIGKILL)  // QEMU follows it (pdeathsig)
            finished.wait()
        }
        let seconds = Date().timeIntervalSince(start)

        var files: [String: Data] = [:]
        if let walker = FileManager.default.enumerator(at: scratch, includingPropertiesForKeys: [.isRegularFileKey]) {
            for case let url as URL in walker {
                let relative = String(url.path.dropFirst(scratch.path.count + 1))
                if relative.hasPrefix(".kvm-host") || relative == ".batch.sh" { continue }
                if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                    files[relative] = try? Data(contentsOf: url)
                }
            }
        }
        let console = (try? String(contentsOf: scratch.appendingPathComponent(".kvm-host/console.log"), encoding: .utf8)) ?? ""
        return Result(stdout: outCollector.finish(), stderr: errCollector.finish(),
                      status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
                      seconds: seconds, files: files, console: console, scratch: scratch.path)
    }

    /// Processes whose command line mentions `fragment` (a scratch path): a
    /// QEMU left behind by kvm-host.sh would show up here.
    static func processes(mentioning fragment: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid -> String? in
            guard Int32(pid) != nil, Int32(pid) != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
            return line.contains(fragment) ? "\(pid): \(line)" : nil
        }
    }
}

/// Several swvmm runs in one KVM-host batch: each gets its own files in the
/// scratch directory, and comes back as a `Swvmm.Result`.
struct SwvmmBatch {
    struct Run {
        var name: String
        var arguments: [String]
        var timeout: Int
        /// Bash that runs in place of plain swvmm (`$swvmm` is the binary,
        /// `$out` the prefix of the run's files, `status` what to record), or nil.
        var shell: String?
    }

    private(set) var runs: [Run] = []

    /// Adds one swvmm run (`name`: letters, digits, '-', '.').
    ///
    /// With `readyMarker`, the run boots a guest that prints it once ready,
    /// and a guest that died or stalled before that (an RCU stall or soft
    /// lockup in its log: multi-vCPU guests under QEMU/TCG hit a
    /// cross-modifying-code race now and then, shared/PLATFORM.md) is ended
    /// and booted again, up to three boots in all (a four-vCPU guest was
    /// lost twice in a row in one run), saying so on stderr and keeping each
    /// lost attempt's output as `NAME.attempt-N.stdout`.
    mutating func add(_ name: String, _ arguments: [String], timeout: Int = 300, readyMarker: String? = nil) {
        precondition(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }, "bad run name \(name)")
        guard let readyMarker else {
            runs.append(Run(name: name, arguments: arguments, timeout: timeout, shell: nil))
            return
        }
        let quoted = arguments.map(shellQuoted).joined(separator: " ")
        let marker = shellQuoted(readyMarker)
        let shell = """
            for attempt in 1 2 3; do
                timeout -k 5 \(timeout) "$swvmm" \(quoted) </dev/null >"$out.stdout" 2>"$out.stderr" & pid=$!
                while kill -0 "$pid" 2>/dev/null; do
                    if ! grep -q \(marker) "$out.stdout" && grep -q -E 'detected stalls|soft lockup' "$out.stdout"; then
                        kill -TERM "$pid"; break
                    fi
                    sleep 2
                done
                wait "$pid" && status=0 || status=$?
                if grep -q \(marker) "$out.stdout" || [ "$attempt" = 3 ]; then break; fi
                echo "swvmm run \(name): the guest died or stalled before it was ready (status $status, attempt $attempt of 3); booting it once more" >&2
                cp "$out.stdout" "$out.attempt-$attempt.stdout"
            done
            """
        runs.append(Run(name: name, arguments: arguments, timeout: timeout, shell: shell))
    }

    /// Adds a run of swvmm that is sent SIGTERM once its stdout shows
    /// `marker`; its stdout then gets a last line `swvmm-left=N`: the swvmm
    /// processes still alive a second after it ended (0: no strays).
    mutating func add(_ name: String, _ arguments: [String], terminateAfter marker: String, timeout: Int = 300) {
        let quoted = arguments.map(shellQuoted).joined(separator: " ")
        let shell = """
            "$swvmm" \(quoted) </dev/null >"$out.stdout" 2>"$out.stderr" & pid=$!
            for _ in $(seq \(timeout)); do grep -q \(shellQuoted(marker)) "$out.stdout" && break; kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -TERM "$pid"; wait "$pid" && status=0 || status=$?
            sleep 1; echo "swvmm-left=$(pgrep -c -x swvmm || true)" >>"$out.stdout"
            """
        runs.append(Run(name: name, arguments: arguments, timeout: timeout, shell: shell))
    }

    /// Adds a command that is not swvmm (a test binary that needs hardware KVM, say).
    mutating func add(_ name: String, command: [String], timeout: Int = 300) {
        let quoted = command.map(shellQuoted).joined(separator: " ")
        let shell = """
            timeout -k 5 \(timeout) \(quoted) </dev/null >"$out.stdout" 2>"$out.stderr" && status=0 || status=$?
            """
        runs.append(Run(name: name, arguments: command, timeout: timeout, shell: shell))
    }

    /// The bash script: each run bounded by `timeout` (status 124 = timed
    /// out). swvmm writes the guest's console a few bytes at a time: into the
    /// scratch directory (virtio-9p in the L1) each write would be a round
    /// trip to QEMU, so the files are written to /tmp and copied afterwards.
    var script: String {
        var text = """
            swvmm=\(shellQuoted(Swvmm.binary.path))
            work=$(mktemp -d)
            trap 'rm -rf "$work"' EXIT

            """
        for run in runs {
            let arguments = run.arguments.map(shellQuoted).joined(separator: " ")
            let command = run.shell ?? """
                timeout -k 5 \(run.timeout) "$swvmm" \(arguments) </dev/null >"$out.stdout" 2>"$out.stderr" && status=0 || status=$?
                """
            text += """
            start=$(date +%s.%N)
            out="$work/\(run.name)"
            \(command)
            echo "$status $start $(date +%s.%N)" >"$work/\(run.name).status"
            cp "$work/\(run.name)".* "$KVM_HOST_SCRATCH/"
            echo "swvmm run \(run.name): status $status" >&2

            """
        }
        return text
    }

    /// The result of run `name`, or a `KVMHost.Failure` if the batch did not get to it.
    func result(_ name: String, in batch: KVMHost.Result) throws -> Swvmm.Result {
        guard let run = runs.first(where: { $0.name == name }) else { throw KVMHost.Failure(description: "no run \(name) in the batch") }
        guard let line = batch.text("\(name).status")?.split(whereSeparator: \.isWhitespace).map(String.init), line.count == 3,
              let status = Int32(line[0]), let start = Double(line[1]), let end = Double(line[2]) else {
            throw KVMHost.Failure(description: "run \(name) left no status\n\(batch.summary)")
        }
        // bash reports a death by signal N as 128+N; timeout(1) says 124 (and 137 after its KILL).
        let timedOut = status == 124 || status == 137
        let signaled = !timedOut && status > 128
        return Swvmm.Result(arguments: run.arguments, stdout: batch.text("\(name).stdout") ?? "",
                            stderr: batch.text("\(name).stderr") ?? "",
                            status: signaled ? status - 128 : status, signaled: signaled, timedOut: timedOut,
                            seconds: end - start)
    }
}

func shellQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
