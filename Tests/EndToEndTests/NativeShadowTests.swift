import Foundation
import XCTest

/// Shadow context on swvmm's own machine, in the KVM host: Debian 6.1 and
/// 6.12 booted by `swvmm --shadow --api-socket`, unmodified tools run there
/// with `swvmm shadow --vm` against the console's ground truth, S alone on
/// its CPU, the guest's own vCPUs never stopped while S serves, and the
/// attacks and faults of a hostile or unlucky guest (with
/// SWVMM_NATIVE_SHADOW_FULL=1; CI runs a smoke test of it). Each kernel is
/// booted once, in a KVM host of its own (and again in a new one should that
/// L1 die or the guest stop answering: `onKVMHost`). 6.1 runs as an ordinary
/// user with Yama's ptrace_scope 1 (the unprivileged client path), 6.12 as
/// root with two vCPUs beside S's.
final class NativeShadowTests: LostGuestRetryingTestCase {
    static let readyMarker = "SWVMM-KNOWN-STATE-READY"
    /// Set to 1 to run the full scenario (both kernels, the tool table, the
    /// attacks). It has passed in full in the KVM host, but too many of its
    /// runs there lose the emulated L1 or the guest to a triple fault (nested
    /// SVM under QEMU/TCG, see the issue's closing note), so CI runs the smoke test.
    static let fullScenarioVariable = "SWVMM_NATIVE_SHADOW_FULL"
    /// Set to a kernel series (6.1, 6.12) to run the full scenario on that one alone.
    static let seriesVariable = "SWVMM_NATIVE_SHADOW_SERIES"

    /// CI's part: Debian 6.12 booted by swvmm with --shadow; through --vm,
    /// uname and hostname are the guest's, S lives alone on its CPU, and the
    /// guest's own vCPU is never interrupted while a redirected `ls -R` runs.
    func testNativeShadowSmokeOnDebian6_12() throws {
        try Swvmm.requireBinary()
        for name in ["vmlinux-6.12", "initramfs-6.12.cpio.gz"] { _ = try Swvmm.image(name) }
        try onKVMHost("6.12 smoke") { bridge in
            let session = try NativeShadowSession(bridge: bridge, spec: NativeGuestSpec(series: "6.12", cpus: 1, user: nil))
            try NativeShadowChecks(session: session).checkSmoke()
        }
    }

    func testNativeShadowOnDebian6_1And6_12() throws {
        guard ProcessInfo.processInfo.environment[Self.fullScenarioVariable] == "1" else {
            throw XCTSkip("the full native scenario runs with \(Self.fullScenarioVariable)=1 (CI runs the smoke test: the emulated KVM host loses too many of its runs)")
        }
        try Swvmm.requireBinary()
        for name in ["vmlinux-6.1", "vmlinux-6.12", "initramfs-6.1.cpio.gz", "initramfs-6.12.cpio.gz"] { _ = try Swvmm.image(name) }
        let only = ProcessInfo.processInfo.environment[Self.seriesVariable]
        for guest in [NativeGuestSpec(series: "6.1", cpus: 1, user: NativeGuestSpec.ordinaryUser),
                      NativeGuestSpec(series: "6.12", cpus: 2, user: nil)] where only == nil || only == guest.series {
            let clock = ContinuousClock()
            let start = clock.now
            try onKVMHost(guest.series) { bridge in
                // The ordinary user's path needs Yama at scope 1 and /dev/kvm for everyone (as a distribution's kvm group gives).
                let setup = try bridge.exec("sysctl -q -w kernel.yama.ptrace_scope=1 && chmod 666 /dev/kvm && cat /proc/sys/kernel/yama/ptrace_scope")
                XCTAssertEqual(setup.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "1", setup.summary)
                let session = try NativeShadowSession(bridge: bridge, spec: guest)
                print("[\(guest.series)] guest ready at \(clock.now - start)")
                try NativeShadowChecks(session: session).checkAll()
                print("[\(guest.series)] checked at \(clock.now - start)")
            }
        }
    }

    /// Runs `body` against a fresh KVM host, and on a new one should the L1
    /// die or the guest in it stop answering its console (nested SVM under
    /// QEMU/TCG loses either now and then).
    func onKVMHost(_ what: String, _ body: (KVMHostBridge) throws -> Void) throws {
        try retryingLostGuests("NativeShadowTests [\(what)]", attempts: 3, lost: Self.lostGuestReason) {
            let bridge = try KVMHostBridge()
            defer { bridge.stop() }
            do {
                try body(bridge)
            } catch where Self.lostGuestReason(error) == nil && !(error is XCTSkip) {
                // A hung guest fails whatever ran on it: whether it still answers tells the two apart.
                guard bridge.answers(timeout: 60) else {
                    throw GuestStoppedAnswering(description: "after \(error)\nthe guest stopped answering its console")
                }
                throw error
            }
        }
    }

    /// Why `error` means the KVM host or its guest was lost, or nil.
    static func lostGuestReason(_ error: Error) -> String? {
        if let failure = error as? KVMHostBridge.Failure, failure.description.contains(KVMHostBridge.hostEnded) {
            return "the KVM host died: \(failure.description.suffix(1500))"
        }
        return error is GuestStoppedAnswering ? String("\(error)".suffix(3000)) : nil
    }
}

/// One guest of the scenario.
struct NativeGuestSpec {
    /// nobody: an ordinary user the KVM host has.
    static let ordinaryUser = 65534
    var series: String
    /// The guest's own vCPUs; S's is one more.
    var cpus: Int
    /// Run swvmm and the clients as this uid (nil: root).
    var user: Int?
    var shadowCPU: Int { cpus }
    var socket: String { "/tmp/swvmm-native-\(series).sock" }
}

/// A guest booted by swvmm in the KVM host, and the clients run against it.
final class NativeShadowSession {
    let bridge: KVMHostBridge
    let spec: NativeGuestSpec
    let release: String

    init(bridge: KVMHostBridge, spec: NativeGuestSpec) throws {
        self.bridge = bridge
        self.spec = spec
        release = try String(contentsOfFile: try Swvmm.image("release-\(spec.series)"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try boot()
    }

    private var userPrefix: [String] {
        spec.user.map { ["setpriv", "--reuid=\($0)", "--regid=\($0)", "--clear-groups"] } ?? []
    }

    /// Boots, and once more should the guest die or stall before /init is
    /// ready (QEMU/TCG's multi-vCPU race under the L1, PLATFORM.md).
    private func boot() throws {
        let arguments = ["run", "--kernel", try Swvmm.image("vmlinux-\(spec.series)"),
                         "--initrd", try Swvmm.image("initramfs-\(spec.series).cpio.gz"),
                         "--memory", "1G", "--cpus", String(spec.cpus), "--shadow", "--api-socket", spec.socket,
                         "--cmdline", "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd swvmm.mode=known-state"]
        var lastError: Error?
        // The VM's swvmm keeps memos in its user's cache: the KVM host's $HOME is read-only.
        let cache = ["env", "XDG_CACHE_HOME=/tmp/swvmm-native-cache-\(spec.series)"]
        for attempt in 1 ... 2 {
            try bridge.boot(arguments, prefix: cache + userPrefix)
            do {
                try bridge.read(until: NativeShadowTests.readyMarker, timeout: 400)
                _ = try bridge.run("echo ready", timeout: 60)
                return
            } catch {
                print("[\(spec.series)] boot attempt \(attempt) failed: \(error)")
                lastError = error
                _ = try? bridge.stopGuest()
            }
        }
        throw lastError ?? KVMHostBridge.Failure(description: "no boot")
    }

    /// `swvmm shadow --vm SOCKET [options] -- arguments`, run in the KVM host as the guest's user.
    func shadow(_ arguments: [String], options: [String] = [], asUser user: Int? = nil, timeout: TimeInterval = 300) throws -> KVMHostBridge.Result {
        try bridge.exec(script(options + ["--"] + arguments, asUser: user), timeout: timeout)
    }

    /// `swvmm shadow --vm SOCKET` with `tail` (options, `--`, the command), as the tool table runs it.
    func shadowResult(_ tail: [String]) throws -> Swvmm.Result {
        let clock = ContinuousClock()
        let start = clock.now
        let result = try bridge.exec(script(tail, asUser: nil), timeout: 300)
        return Swvmm.Result(arguments: ["shadow", "--vm", spec.socket] + tail, stdout: result.stdout, stderr: result.stderr,
                            status: result.status, signaled: false, timedOut: false, seconds: (clock.now - start).seconds)
    }

    /// The same, started without waiting (`bridge.wait(for:)` collects it).
    func startShadow(_ arguments: [String], options: [String] = []) throws -> Int {
        try bridge.start(script(options + ["--"] + arguments, asUser: nil))
    }

    private func script(_ tail: [String], asUser user: Int?) -> String {
        let prefix = (user ?? spec.user).map { ["setpriv", "--reuid=\($0)", "--regid=\($0)", "--clear-groups"] } ?? []
        let words = prefix + [Swvmm.binary.path, "shadow", "--vm", spec.socket] + tail
        return "cd / && exec " + words.map(KVMHostBridge.quoted).joined(separator: " ")
    }

    /// The guest's console (ground truth).
    func console(_ command: String, timeout: TimeInterval = 60) throws -> String {
        try bridge.text(command, timeout: timeout)
    }
}

/// The tool table's checks read the same console.
extension NativeShadowSession: ShadowToolGuest {
    /// The console of a guest in the KVM host is emulated twice over: a long
    /// ground truth (every /proc/N/stat) takes far longer than on a QEMU guest.
    static let consoleTimeoutFloor: TimeInterval = 180

    func run(_ command: String, timeout: TimeInterval) throws -> (output: String, status: Int32) {
        try bridge.run(command, timeout: max(timeout, Self.consoleTimeoutFloor))
    }
}

/// A process of the KVM host's own (where the inspectors run) with a
/// distinctive name: a copy of sleep, as `HostMarker` is on this host.
struct KVMHostMarker: MarkerProcess {
    let name: String
    let pid: Int32

    init(bridge: KVMHostBridge) throws {
        name = "swvmm-hm-" + String((0 ..< 6).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! })
        let started = try bridge.exec("cp /bin/sleep /tmp/\(name) && { /tmp/\(name) 3600 >/dev/null 2>&1 & echo $!; }")
        guard let pid = Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw KVMHostBridge.Failure(description: "the marker did not start: \(started.summary)")
        }
        self.pid = pid
    }
}

/// The checks on one native guest.
struct NativeShadowChecks {
    let session: NativeShadowSession
    var series: String { session.spec.series }
    /// The dedicated CPU as taskset's hex mask.
    var shadowCPUMask: String { String(1 << session.spec.shadowCPU, radix: 16) }
    /// The guest's own CPUs as a mask.
    var guestCPUsMask: String { String((1 << session.spec.cpus) - 1, radix: 16) }

    init(session: NativeShadowSession) { self.session = session }

    /// The tools `ShadowToolTests` checked first, rows of the same table.
    static let tableRows: Set<String> = ["ps -e -o pid,comm", "ps aux", "pstree -p", "lsmod", "netstat -tln", "uname -a",
                                         "hostname", "uptime", "free", "cat /proc/cpuinfo", "ls /proc", "df"]

    /// The checks CI runs.
    func checkSmoke() throws {
        try checkToolsAgainstTheConsole()
        _ = try checkShadowProcessLivesOnItsCPU()
        try checkOtherVCPUsNeverStop()
    }

    func checkAll() throws {
        let marker = try KVMHostMarker(bridge: session.bridge)
        defer { _ = try? session.bridge.exec("kill \(marker.pid)") }
        let visible = try session.bridge.exec("ps -e -o comm")
        XCTAssertTrue(visible.stdout.contains(marker.name), "the marker is not in the KVM host's own ps: the absence checks would prove nothing")
        let table = ShadowToolChecks(guest: session, marker: marker, series: series) { tail in try session.shadowResult(tail) }
        try table.checkTable(ShadowToolTable.rows.filter { Self.tableRows.contains($0.command.joined(separator: " ")) })
        try checkToolsAgainstTheConsole()
        let shadow = try checkShadowProcessLivesOnItsCPU()
        try checkOtherVCPUsNeverStop()
        try checkProcessPinnedToTheShadowCPU()
        try checkSecondClientWaits()
        try checkOtherUsersAreRefused()
        let rebuilt = try checkTamperedShadowIsReplaced(shadow)
        try checkKilledShadowIsReplaced(rebuilt)
        try checkStoppingSwvmmMidRun()
    }

    /// A run that must succeed; its stdout.
    @discardableResult
    func shadow(_ arguments: [String], verbose: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> KVMHostBridge.Result {
        let result = try session.shadow(arguments, options: verbose ? ["--verbose"] : [])
        XCTAssertEqual(result.status, 0, "[\(series)] \(arguments.joined(separator: " ")): \(result.summary)", file: file, line: line)
        return result
    }

    func checkToolsAgainstTheConsole() throws {
        let uname = try shadow(["uname", "-a"])
        XCTAssertTrue(uname.stdout.contains(session.release), "[\(series)] uname -a: \(uname.stdout)")
        let hostname = try shadow(["hostname"])
        XCTAssertEqual(hostname.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       try session.console("hostname").trimmingCharacters(in: .whitespacesAndNewlines), hostname.summary)
    }

    /// The guest pids whose comm is `name` (the console's answer).
    func pids(named name: String) throws -> [Int] {
        try session.console("for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = \(name) ] && echo ${p#/proc/}; done; true")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
    }

    /// The number `--verbose` prints after `label` ("shadow process pid ", "batches in one exit ").
    func number(after label: String, in stderr: String) -> Int? {
        guard let range = stderr.range(of: label) else { return nil }
        return Int(stderr[range.upperBound...].prefix { $0.isNumber })
    }

    /// The pid in `--verbose`'s "shadow process pid N".
    func reportedShadowPID(in stderr: String) -> Int? { number(after: "shadow process pid ", in: stderr) }

    /// S: one swvmm-shadow in the guest, on the dedicated CPU only (field 39 of its stat).
    func checkShadowProcessLivesOnItsCPU() throws -> Int {
        let verbose = try shadow(["hostname"], verbose: true)
        let pids = try pids(named: "swvmm-shadow")
        XCTAssertEqual(pids.count, 1, "[\(series)] one swvmm-shadow in the guest: \(pids)")
        XCTAssertEqual(reportedShadowPID(in: verbose.stderr), pids.first, "[\(series)] --verbose names S: \(verbose.stderr)")
        guard let pid = pids.first else { throw KVMHostBridge.Failure(description: "no S in the guest") }
        for _ in 0 ..< 3 {
            let stat = try session.console("cat /proc/\(pid)/stat")
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            // Field 39 (processor), counted from the state, field 3.
            XCTAssertEqual(fields.count > 36 ? Int(fields[36]) : nil, session.spec.shadowCPU, "[\(series)] S's CPU: \(stat)")
        }
        return pid
    }

    /// Interruptions of the guest's own vCPUs `--verbose` reports for a run.
    func otherInterruptions(in stderr: String) -> Int? { number(after: "other vCPU interruptions ", in: stderr) }

    /// Batches S ran in one exit each, as `--verbose` reports them for a run.
    func batchesInOneExit(in stderr: String) -> Int? { number(after: "batches in one exit ", in: stderr) }

    /// While a redirected `ls -R` runs for seconds, a guest workload on the
    /// guest's own CPUs keeps counting, and swvmm interrupts none of them.
    func checkOtherVCPUsNeverStop() throws {
        _ = try session.console("(taskset \(guestCPUsMask) sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; done' & echo $! > /tmp/counter.pid) ; sleep 1")
        defer { _ = try? session.console("kill $(cat /tmp/counter.pid); true") }
        let run = try session.startShadow(["ls", "-R", "/proc/sys/kernel"], options: ["--verbose"])
        var counts: [Int] = []
        for _ in 0 ..< 3 {
            // The workload rewrites the file: read until a whole number shows.
            let read = "sleep 1; c=; while [ -z \"$c\" ]; do c=$(cat /tmp/counter); done; echo $c"
            counts.append(Int(try session.console(read).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1)
        }
        let result = try session.bridge.wait(for: run)
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("/proc/sys/kernel/random:"), "[\(series)] ls -R lists the guest's /proc/sys/kernel: \(result.stdout.prefix(300))")
        XCTAssertEqual(otherInterruptions(in: result.stderr), 0, "[\(series)] the guest's own vCPUs were interrupted: \(result.stderr)")
        // ls -R's directories are read ahead in batches, each one exit of S's vCPU.
        XCTAssertGreaterThan(batchesInOneExit(in: result.stderr) ?? 0, 0, "[\(series)] no batch ran in one exit: \(result.stderr)")
        XCTAssertEqual(counts, counts.sorted(), "[\(series)] the workload's counter went back: \(counts)")
        XCTAssertEqual(Set(counts).count, counts.count, "[\(series)] the workload stopped counting during the run: \(counts)")
        print("[\(series)] during ls -R: workload counter \(counts); \(result.stderr.split(separator: "\n").filter { $0.contains("this run") })")
    }

    /// A root process pinned to S's CPU, making system calls in a loop while
    /// inspectors run: each of its calls behaves normally, none is taken as S's.
    func checkProcessPinnedToTheShadowCPU() throws {
        // Shell builtins only: open, read, write and close in a loop, no fork.
        _ = try session.console("rm -f /tmp/attack.log; (taskset \(shadowCPUMask) sh -c 'n=0; while :; do read h < /proc/sys/kernel/hostname; "
                                + "[ \"$h\" = swvmm-guest ] || echo \"BAD $h\" >> /tmp/attack.log; n=$((n+1)); echo $n > /tmp/attack.count; done' & echo $! > /tmp/attack.pid) ; sleep 1")
        defer { _ = try? session.console("kill $(cat /tmp/attack.pid); true") }
        func count() throws -> Int {
            Int(try session.console("c=; while [ -z \"$c\" ]; do c=$(cat /tmp/attack.count); done; echo $c")
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let before = try count()
        let ps = try shadow(["ps", "-e", "-o", "pid,comm"])
        XCTAssertTrue(ps.stdout.contains("swvmm-shadow"), "[\(series)] ps -e beside the attacker: \(ps.stdout.suffix(500))")
        try checkToolsAgainstTheConsole()
        let after = try count()
        XCTAssertGreaterThan(after, before, "[\(series)] the pinned process kept running its calls")
        XCTAssertEqual(try session.console("cat /tmp/attack.log 2>/dev/null; true").trimmingCharacters(in: .whitespacesAndNewlines), "",
                       "[\(series)] the pinned process saw wrong results")
        let cpu = try session.console("taskset -p $(cat /tmp/attack.pid)")
        XCTAssertTrue(cpu.hasSuffix(": \(shadowCPUMask)\n"), "[\(series)] the attacker is pinned to S's CPU: \(cpu)")
    }

    /// Two clients at once: the second waits its turn, says so, and both work.
    func checkSecondClientWaits() throws {
        // The first holds the VM for seconds once it has printed the guest's
        // hostname: shell builtins and exec only, one process (under Yama
        // scope 1 the VM's swvmm may read the inspector alone, not its children).
        let first = try session.startShadow(["sh", "-c", "read h < /proc/sys/kernel/hostname; echo \"first $h\"; exec sleep 8"])
        try session.bridge.waitForOutput(of: first, containing: "first swvmm-guest")
        let second = try session.shadow(["hostname"])
        let firstResult = try session.bridge.wait(for: first)
        XCTAssertEqual(firstResult.status, 0, firstResult.summary)
        XCTAssertEqual(second.status, 0, second.summary)
        XCTAssertEqual(second.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "swvmm-guest")
        XCTAssertTrue(second.stderr.contains("another inspector is running"), "[\(series)] the second client said it waits: \(second.stderr)")
    }

    /// A client of another user: refused, nothing run.
    func checkOtherUsersAreRefused() throws {
        let other = session.spec.user == nil ? NativeGuestSpec.ordinaryUser : 0
        let result = try session.shadow(["hostname"], asUser: other)
        XCTAssertEqual(result.status, 1, "[\(series)] uid \(other) on another user's VM: \(result.summary)")
        XCTAssertFalse(result.stdout.contains("swvmm-guest"), result.summary)
        XCTAssertFalse(result.stderr.isEmpty, "[\(series)] a refusal says why")
    }

    /// S's stub rewritten through /proc/S/mem by a root process: S is ended,
    /// nothing runs for it, and the next run makes a new S.
    func checkTamperedShadowIsReplaced(_ shadowPID: Int) throws -> Int {
        let maps = try session.console("grep rwxp /proc/\(shadowPID)/maps")
        guard let start = maps.split(separator: "-").first.flatMap({ UInt64($0, radix: 16) }) else {
            throw KVMHostBridge.Failure(description: "no rwx region in S's maps: \(maps)")
        }
        // One byte of the stub's page-touching loop, which S has long left.
        _ = try session.console("printf '\\314' | dd of=/proc/\(shadowPID)/mem bs=1 seek=\(start + 16) conv=notrunc 2>&1; sleep 1")
        let result = try shadow(["hostname"], verbose: true)
        let newPID = reportedShadowPID(in: result.stderr)
        XCTAssertNotNil(newPID, result.stderr)
        XCTAssertNotEqual(newPID, shadowPID, "[\(series)] a new S after the tampering: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("modified"), "[\(series)] swvmm says why S was replaced: \(result.stderr)")
        XCTAssertEqual(try pids(named: "swvmm-shadow"), newPID.map { [$0] } ?? [], "[\(series)] the tampered S is gone")
        return newPID ?? -1
    }

    /// S killed in the guest: the next run makes a new one and says why.
    func checkKilledShadowIsReplaced(_ shadowPID: Int) throws {
        _ = try session.console("kill -9 \(shadowPID); sleep 31")
        let result = try shadow(["hostname"], verbose: true)
        XCTAssertNotEqual(reportedShadowPID(in: result.stderr), shadowPID, result.stderr)
        XCTAssertTrue(result.stderr.contains("killed or stopped"), "[\(series)] swvmm says why S was replaced: \(result.stderr)")
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "swvmm-guest")
    }

    /// swvmm stopped while an inspector runs: the client says so, nothing is left behind.
    func checkStoppingSwvmmMidRun() throws {
        let run = try session.startShadow(["ls", "-R", "/proc/sys"])
        sleep(3)
        let status = try session.bridge.stopGuest()
        XCTAssertEqual(status, 0, "[\(series)] swvmm's status when stopped: \(session.bridge.swvmmStderr.suffix(1500))")
        let result = try session.bridge.wait(for: run, timeout: 60)
        XCTAssertNotEqual(result.status, 0, result.summary)
        XCTAssertTrue(result.stderr.contains("stopping") || result.stderr.contains("gone") || result.stderr.contains("went away"), "[\(series)] the client says swvmm went away: \(result.stderr)")
        let strays = try session.bridge.exec("pgrep -af 'ls -R /proc/sys|swvmm shadow' || true; [ -e \(session.spec.socket) ] && echo socket left; true")
        XCTAssertEqual(strays.stdout, "", "[\(series)] left behind in the KVM host")
        print("[\(series)] swvmm at exit: \(session.bridge.swvmmStderr.split(separator: "\n").filter { $0.contains("shadow") })")
    }
}
