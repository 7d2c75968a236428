import Foundation
import XCTest
import GDBRemote
import Shadow

/// Shadow context end to end against stock Debian kernels under QEMU/TCG:
/// S is created without an agent or symbols, the borrowed process
/// is unchanged, and the guest kernel answers calls made through S.
final class ShadowEndToEndTests: XCTestCase {
    var guest: ReferenceGuest?

    override func tearDown() {
        guest?.stop()
        guest = nil
        super.tearDown()
    }

    func testShadowContextOnDebian6_12() throws { try scenario(series: "6.12") }
    func testShadowContextOnDebian6_1() throws { try scenario(series: "6.1") }

    func testUnreachableStubGivesClearError() throws {
        let path = NSTemporaryDirectory() + "swvmm-no-such-stub-\(getpid()).sock"
        XCTAssertThrowsError(try GDBRemoteTarget(address: "unix:" + path, timeout: 2)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("cannot connect") && text.contains(path), text)
        }
    }

    private func pids(_ text: String) -> Set<Int64> {
        Set(text.utf8.split(whereSeparator: { $0 == 10 || $0 == 13 || $0 == 32 || $0 == 9 }).compactMap { Int64(String(decoding: $0, as: UTF8.self)) })
    }

    private func scenario(series: String) throws {
        let guest = try ReferenceGuest.booting(series: series)
        self.guest = guest
        let console = guest.console!
        let stateDirectory = guest.directory.appendingPathComponent("state").path

        // A workload to borrow: a shell loop that forks (page faults from
        // user mode) and counts into a file until told to stop.
        let started = try console.run("sh -c 'i=0; while [ ! -e /tmp/wl.stop ]; do i=$((i+1)); ( : ); echo $i > /tmp/wl.count; done; echo WL-DONE-$i > /tmp/wl.done' >/dev/null 2>&1 & echo WL=$!")
        guard let wl = started.components(separatedBy: "WL=").last.flatMap({ Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            return XCTFail("no workload pid in \(started)")
        }
        _ = try console.run("cat /proc/\(wl)/maps > /tmp/maps.before")

        var configuration = ShadowConfiguration()
        configuration.callTimeout = .seconds(8)
        configuration.acceptBorrowed = { $0 == wl }
        let clock = ContinuousClock()
        var target: GDBRemoteTarget? = try GDBRemoteTarget(address: guest.gdbAddress, timeout: 10)
        let session = try ShadowSession(target: target!, key: guest.gdbAddress, configuration: configuration, stateDirectory: stateDirectory)
        guard case let .built(report, _) = session.origin else { return XCTFail("expected a new S") }
        let executor = session.executor
        let shadowPID = executor.shadow.pid
        print("[\(series)] S pid \(shadowPID) built in \(session.readyAfter) (\(report.stops) stops, \(report.rejectedCandidates) candidates passed over), borrowed pid \(executor.shadow.borrowedPID)")

        // The borrowed process: same user registers, maps, no new child.
        XCTAssertEqual(executor.shadow.borrowedPID, wl)
        let before = report.borrowedBefore, after = report.borrowedAfter
        XCTAssertEqual([before.rax, before.rbx, before.rcx, before.rdx, before.rsi, before.rdi, before.rbp, before.rsp,
                        before.r8, before.r9, before.r10, before.r11, before.r12, before.r13, before.r14, before.r15, before.rip, before.rflags],
                       [after.rax, after.rbx, after.rcx, after.rdx, after.rsi, after.rdi, after.rbp, after.rsp,
                        after.r8, after.r9, after.r10, after.r11, after.r12, after.r13, after.r14, after.r15, after.rip, after.rflags])

        // Batch 1 through S.
        let t0 = clock.now
        let calls = GuestCalls(executor: executor)
        XCTAssertEqual(try calls.getpid(), shadowPID)
        let firstCall = clock.now - t0
        let uts = try calls.uname()
        XCTAssertEqual(uts.release, guest.release)
        XCTAssertEqual(uts.nodename, "swvmm-guest")
        XCTAssertEqual(uts.sysname, "Linux")
        let version = try calls.readFile("/proc/version")
        let status = try calls.readFile("/proc/self/status")
        let proc1 = try calls.listDirectory("/proc")
        let burstStats = executor.statistics
        try executor.release()
        XCTAssertTrue(version.contains(guest.release), version)
        XCTAssertTrue(status.contains("Pid:\t\(shadowPID)\n"), status)
        let shadowPIDs = Set(proc1.compactMap { Int64($0) })

        // Ground truth from the console.
        let psText = try console.run("ps -o pid")
        XCTAssertTrue(pids(psText).contains(shadowPID), "guest ps does not list S (\(shadowPID)): \(psText)")
        let consoleVersion = try console.run("cat /proc/version")
        XCTAssertEqual(consoleVersion.trimmingCharacters(in: .whitespacesAndNewlines), version.trimmingCharacters(in: .whitespacesAndNewlines))
        let listA = pids(try console.run("for d in /proc/[0-9]*; do echo ${d#/proc/}; done"))
        let stable = listA.intersection(pids(try console.run("for d in /proc/[0-9]*; do echo ${d#/proc/}; done")))
        XCTAssertTrue(stable.subtracting(shadowPIDs).isEmpty, "pids the console sees but getdents64 through S does not: \(stable.subtracting(shadowPIDs))")
        let mapsDiff = try console.run("cat /proc/\(wl)/maps | cmp - /tmp/maps.before && echo MAPS-SAME")
        XCTAssertTrue(mapsDiff.contains("MAPS-SAME"), mapsDiff)
        // S tells whoever looks what it is.
        XCTAssertEqual(try console.run("cat /proc/\(shadowPID)/comm").trimmingCharacters(in: .whitespacesAndNewlines),
                       ShadowStub.processName)
        // Its command line too (the borrowed process here is root, so S may set it), not the borrowed one's.
        XCTAssertEqual(try console.run("tr '\\0' '\\n' < /proc/\(shadowPID)/cmdline").trimmingCharacters(in: .whitespacesAndNewlines),
                       ShadowStub.processName)
        let children = try console.run("cat /proc/\(wl)/task/*/children; echo; grep PPid /proc/\(shadowPID)/status")
        XCTAssertFalse(pids(children.components(separatedBy: "PPid").first ?? "").contains(shadowPID), children)
        XCTAssertTrue(children.contains("PPid:\t1"), "S should be reparented to init: \(children)")

        // Measurements: one call when S was sleeping, and a burst.
        var sleepingLatencies: [Duration] = []
        for _ in 0 ..< 5 {
            let start = clock.now
            _ = try calls.getpid()
            sleepingLatencies.append(clock.now - start)
            try executor.release()
            usleep(100_000)
        }
        let s0 = executor.statistics
        for _ in 0 ..< 20 { _ = try calls.getpid() }
        let s1 = executor.statistics
        try executor.release()
        let burstCalls = s1.calls - s0.calls
        print("[\(series)] first call \(firstCall); median call with S sleeping \(sleepingLatencies.sorted()[2]);"
              + " burst: \(Double(s1.stops - s0.stops) / Double(burstCalls)) stops/call, "
              + "\((s1.total - s0.total) / burstCalls) per call, host-side \(((s1.total - s0.total) - (s1.waiting - s0.waiting)) / burstCalls) per call;"
              + " batch 1: \(burstStats.calls) calls, \(burstStats.stops) stops")

        // 30 s later, with the console answering meanwhile.
        Thread.sleep(forTimeInterval: 30)
        XCTAssertTrue(try console.run("echo alive-$((6*7))").contains("alive-42"))
        XCTAssertEqual(try calls.getpid(), shadowPID)
        XCTAssertEqual(try calls.uname().release, guest.release)
        try executor.close()

        // A new connection finds the same S through the state file.
        try target?.detach()
        target = nil
        let target2 = try GDBRemoteTarget(address: guest.gdbAddress, timeout: 10)
        let session2 = try ShadowSession(target: target2, key: guest.gdbAddress, configuration: configuration, stateDirectory: stateDirectory)
        guard case .reused = session2.origin else { return XCTFail("the second connection did not reuse S: \(session2.origin)") }
        XCTAssertEqual(session2.executor.shadow.pid, shadowPID)
        print("[\(series)] reconnect: S ready after \(session2.readyAfter)")
        try session2.executor.close()

        // Killing S: a clear report, then a rebuilt S.
        _ = try console.run("kill -9 \(shadowPID)")
        XCTAssertThrowsError(try GuestCalls(executor: session2.executor).getpid()) { error in
            XCTAssertTrue("\(error)".contains("pid \(shadowPID)") && "\(error)".contains("trap point"), "\(error)")
        }
        try session2.executor.close()
        let session3 = try ShadowSession(target: target2, key: guest.gdbAddress, configuration: configuration, stateDirectory: stateDirectory)
        guard case let .built(_, staleReason) = session3.origin else { return XCTFail("S was not rebuilt") }
        print("[\(series)] after kill: \(staleReason ?? "no reason")")
        XCTAssertNotNil(staleReason)
        XCTAssertNotEqual(session3.executor.shadow.pid, shadowPID)
        XCTAssertEqual(try GuestCalls(executor: session3.executor).getpid(), session3.executor.shadow.pid)
        try session3.executor.close()
        try target2.detach()

        // The workload completes with the right count.
        _ = try console.run("touch /tmp/wl.stop; while [ ! -e /tmp/wl.done ]; do sleep 0.2; done")
        let done = try console.run("cat /tmp/wl.done /tmp/wl.count")
        let parts = done.utf8.split(whereSeparator: { $0 == 10 || $0 == 13 }).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(parts.count, 2, done)
        if parts.count == 2 { XCTAssertEqual(parts[0], "WL-DONE-" + parts[1], done) }
    }
}
