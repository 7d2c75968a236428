import Foundation
import XCTest

/// Shadow context on swvmm's own machine, in the KVM host: Debian 6.1 and
/// 6.12 booted by `swvmm --shadow --api-socket`, unmodified tools run there
/// with `swvmm shadow --vm` against the console's ground truth, S alone on
/// its CPU, the guest's own vCPUs never stopped while S serves, and the
/// attacks and faults of a hostile or unlucky guest. One L1 serves both
/// kernels, each booted once. 6.1 runs as an ordinary user with Yama's
/// ptrace_scope 1 (the unprivileged client path), 6.12 as root.
final class NativeShadowTests: XCTestCase {
    static let readyMarker = "SWVMM-KNOWN-STATE-READY"

    func testNativeShadowOnDebian6_1And6_12() throws {
        try Swvmm.requireBinary()
        for name in ["vmlinux-6.1", "vmlinux-6.12", "initramfs-6.1.cpio.gz", "initramfs-6.12.cpio.gz"] { _ = try Swvmm.image(name) }
        let clock = ContinuousClock()
        let start = clock.now
        let bridge = try KVMHostBridge()
        defer { bridge.stop() }
        print("KVM host ready after \(clock.now - start)")
        // The ordinary user's path needs Yama at scope 1 and /dev/kvm for everyone (as a distribution's kvm group gives).
        let setup = try bridge.exec("sysctl -q -w kernel.yama.ptrace_scope=1 && chmod 666 /dev/kvm && cat /proc/sys/kernel/yama/ptrace_scope")
        XCTAssertEqual(setup.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "1", setup.summary)

        for guest in [NativeGuestSpec(series: "6.1", cpus: 1, user: NativeGuestSpec.ordinaryUser),
                      NativeGuestSpec(series: "6.12", cpus: 2, user: nil)] {
            let session = try NativeShadowSession(bridge: bridge, spec: guest)
            print("[\(guest.series)] guest ready at \(clock.now - start)")
            var checks = NativeShadowChecks(session: session)
            try checks.checkAll()
            print("[\(guest.series)] checked at \(clock.now - start)")
        }
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
        for attempt in 1 ... 2 {
            try bridge.boot(arguments, prefix: userPrefix)
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
        try bridge.exec(script(arguments, options: options, asUser: user), timeout: timeout)
    }

    /// The same, started without waiting (`bridge.wait(for:)` collects it).
    func startShadow(_ arguments: [String], options: [String] = []) throws -> Int {
        try bridge.start(script(arguments, options: options, asUser: nil))
    }

    private func script(_ arguments: [String], options: [String], asUser user: Int?) -> String {
        let prefix = (user ?? spec.user).map { ["setpriv", "--reuid=\($0)", "--regid=\($0)", "--clear-groups"] } ?? []
        let words = prefix + [Swvmm.binary.path, "shadow", "--vm", spec.socket] + options + ["--"] + arguments
        return "cd / && exec " + words.map(KVMHostBridge.quoted).joined(separator: " ")
    }

    /// The guest's console (ground truth).
    func console(_ command: String, timeout: TimeInterval = 60) throws -> String {
        try bridge.text(command, timeout: timeout)
    }
}

/// The checks on one native guest.
struct NativeShadowChecks {
    let session: NativeShadowSession
    var series: String { session.spec.series }

    init(session: NativeShadowSession) { self.session = session }

    mutating func checkAll() throws {
        try checkToolsAgainstTheConsole()
        try checkShadowProcessLivesOnItsCPU()
    }

    func checkToolsAgainstTheConsole() throws {
        let uname = try session.shadow(["uname", "-a"])
        XCTAssertEqual(uname.status, 0, uname.summary)
        XCTAssertTrue(uname.stdout.contains(session.release), "[\(series)] uname -a: \(uname.stdout)")
        let hostname = try session.shadow(["hostname"])
        XCTAssertEqual(hostname.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       try session.console("hostname").trimmingCharacters(in: .whitespacesAndNewlines), hostname.summary)
    }

    /// S: named swvmm-shadow in the guest, on the dedicated CPU only.
    func checkShadowProcessLivesOnItsCPU() throws {
        let pids = try session.console("for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = swvmm-shadow ] && echo ${p#/proc/}; done")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        XCTAssertEqual(pids.count, 1, "[\(series)] one swvmm-shadow in the guest: \(pids)")
        guard let pid = pids.first else { return }
        for _ in 0 ..< 3 {
            let stat = try session.console("cat /proc/\(pid)/stat")
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            // Field 39 (processor) counted from the state, field 3.
            XCTAssertEqual(fields.count > 36 ? Int(fields[36]) : nil, session.spec.shadowCPU, "[\(series)] S's CPU: \(stat)")
        }
    }
}
