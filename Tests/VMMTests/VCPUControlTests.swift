import CKVM
import Glibc
import Guest
import MicroVM
import VMM
import XCTest

/// Per-vCPU control on real KVM vCPUs: micro-guests that write a port in a
/// loop (one exit per iteration, at CPL 3, which runs natively even on a KVM
/// without VT-x/AMD-V), driven by `VCPURunner` and its handles.
final class VCPUControlTests: XCTestCase {
    /// l: out dx, al; inc rbx; jmp l — rdx holds the vCPU's own port.
    static let portLoop: [UInt8] = [0xEE, 0x48, 0xFF, 0xC3, 0xEB, 0xFA]
    static let firstPort: UInt16 = 0x80

    private var runThread: HostThread?
    private let outcome = LockedBox<MachineOutcome?>(nil)

    /// Starts `count` looping vCPUs under a runner on a background thread.
    private func startLoops(count: Int) throws -> VCPURunner {
        let guest = try MicroGuest.make()
        try guest.load(Self.portLoop)
        let vcpus = try (0..<count).map { id in
            try guest.addVCPU(cpl: 3) { $0.rdx = UInt64(Self.firstPort) + UInt64(id) }
        }
        let runner = VCPURunner(vcpus: vcpus, memory: guest.memory)
        let outcome = self.outcome
        runThread = try HostThread(name: "test-runner") { outcome.value = runner.run() }
        try waitUntil("every vCPU has run") { runner.handles.allSatisfy { $0.exitCount > 10 } }
        return runner
    }

    private func finish(_ runner: VCPURunner) {
        runner.stop(.stoppedByUser("test done"))
        runThread?.join()
        runThread = nil
    }

    struct TimedOut: Error, CustomStringConvertible {
        let what: String
        var description: String { "timed out waiting until \(what)" }
    }

    private func waitUntil(_ what: String, seconds: Double = 5, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { throw TimedOut(what: what) }
            usleep(1000)
        }
    }

    func testPausedVCPUStaysOutWhileTheOtherRunsOn() throws {
        let runner = try startLoops(count: 2)
        defer { finish(runner) }
        let paused = try XCTUnwrap(runner.vcpu(1)), running = try XCTUnwrap(runner.vcpu(0))
        XCTAssertEqual(try paused.send(.pause), .paused)
        XCTAssertEqual(paused.state, .paused)
        let pausedExits = paused.exitCount, runningExits = running.exitCount
        usleep(100_000)
        XCTAssertEqual(paused.exitCount, pausedExits, "a paused vCPU takes no exits")
        XCTAssertGreaterThan(running.exitCount, runningExits + 10, "the other vCPU kept running")
        XCTAssertEqual(running.pauseCount, 0)
        XCTAssertEqual(paused.pauseCount, 1)

        XCTAssertEqual(try paused.send(.resume), .running)
        try waitUntil("the resumed vCPU runs again") { paused.exitCount > pausedExits + 10 }
        XCTAssertEqual(paused.pauseCount, 1, "resuming is not a pause")
    }

    func testPerformRunsOnTheVCPUsOwnThreadWithItsStateStill() throws {
        let runner = try startLoops(count: 1)
        defer { finish(runner) }
        let handle = try XCTUnwrap(runner.vcpu(0))
        try handle.send(.pause)
        let seen = LockedBox<(rip: UInt64, rbx: UInt64, thread: String)?>(nil)
        try handle.send(.perform { vcpu in
            let regs = try vcpu.registers()
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
            seen.value = (regs.rip, regs.rbx, name.trimmingCharacters(in: .whitespacesAndNewlines))
        })
        let first = try XCTUnwrap(seen.value)
        XCTAssertEqual(first.thread, "vcpu0", "perform ran on the vCPU's own thread")
        let code = MicroGuest.codeAddress
        XCTAssertTrue((code..<code + UInt64(Self.portLoop.count)).contains(first.rip), "rip 0x\(String(first.rip, radix: 16)) is in the loop")
        usleep(50_000)
        try handle.send(.perform { vcpu in seen.value = (try vcpu.registers().rip, try vcpu.registers().rbx, "") })
        XCTAssertEqual(seen.value?.rbx, first.rbx, "a paused vCPU's registers do not move")
        XCTAssertEqual(handle.state, .paused, "perform leaves the state as it was")
    }

    func testPerformFailureComesBackToTheSender() throws {
        let runner = try startLoops(count: 1)
        defer { finish(runner) }
        struct Refused: Error {}
        XCTAssertThrowsError(try runner.vcpu(0)?.send(.perform { _ in throw Refused() })) { error in
            guard case VCPUControlError.performFailed(vcpu: 0, _) = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(runner.vcpu(0)?.state, .running)
    }

    func testExitHandlerSeesItsVCPUsExitsFirstAndCanPauseIt() throws {
        let runner = try startLoops(count: 2)
        defer { finish(runner) }
        let claimed = LockedBox(0)
        let handle = try XCTUnwrap(runner.vcpu(1))
        let port = Self.firstPort + 1
        handle.exitHandler = { exit, _ in
            guard case let .portIO(io) = exit, io.port == port else { return .notHandled }
            claimed.value += 1
            return claimed.value == 50 ? .pause : .handled
        }
        try waitUntil("the handler paused its vCPU") { handle.state == .paused }
        XCTAssertEqual(claimed.value, 50)
        XCTAssertEqual(handle.pauseCount, 1)
        let busWritesBefore = runner.ports.statistics().unclaimedWrites
        usleep(50_000)
        XCTAssertEqual(claimed.value, 50, "paused by its handler, it stays out")
        XCTAssertGreaterThan(runner.ports.statistics().unclaimedWrites, busWritesBefore,
                             "vCPU 0's exits, not claimed by any handler, still reach the bus")
        XCTAssertEqual(runner.vcpu(0)?.pauseCount, 0)
    }

    func testPauseAllExceptOneAndResumeExactlyThose() throws {
        let runner = try startLoops(count: 3)
        defer { finish(runner) }
        let paused = try runner.pauseAll(except: [2])
        XCTAssertEqual(paused.map(\.id), [0, 1])
        XCTAssertEqual(runner.handles.map(\.state), [.paused, .paused, .running])
        try runner.resume(paused)
        XCTAssertEqual(runner.handles.map(\.state), [.running, .running, .running])
    }

    func testStoppingIsFinalAndWakesPausedVCPUs() throws {
        let runner = try startLoops(count: 2)
        try runner.vcpu(0)?.send(.pause)
        let start = Date()
        finish(runner)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "a paused vCPU's thread ends promptly on stop")
        guard case .stoppedByUser = outcome.value else { return XCTFail("\(String(describing: outcome.value))") }
        XCTAssertEqual(runner.handles.map(\.state), [.stopped, .stopped])
        XCTAssertThrowsError(try runner.vcpu(1)?.send(.resume)) { error in
            XCTAssertEqual(error as? VCPUControlError, .stopped(vcpu: 1))
        }
    }

    /// Where a vCPU's thread stands: a paused one is out of the guest since
    /// its last exit, for as long as it has been paused.
    func testActivityOfAPausedVCPUIsOutOfTheGuestSinceItsLastExit() throws {
        let runner = try startLoops(count: 1)
        defer { finish(runner) }
        let handle = try XCTUnwrap(runner.vcpu(0))
        try handle.send(.pause)
        usleep(200_000)
        let activity = handle.activity
        XCTAssertEqual(activity.state, .paused)
        guard case let .outOfGuest(duration, exit) = activity.place else { return XCTFail("\(activity)") }
        XCTAssertGreaterThanOrEqual(duration, .milliseconds(200))
        XCTAssertTrue(["IO_OUT", "INTR"].contains(exit), "the loop's own exit or the kick's: \(exit)")
        XCTAssertTrue(activity.description.hasPrefix("vCPU 0 (paused): out of the guest for "), activity.description)
    }

    /// A vCPU spinning in the guest (`jmp $` at CPL 3: no exit at all) is in
    /// the guest since its entry, however long that has been.
    func testActivityOfAVCPUThatMakesNoExitsIsInTheGuest() throws {
        let guest = try MicroGuest.make()
        try guest.load([0xEB, 0xFE])   // jmp $
        let runner = VCPURunner(vcpus: [try guest.addVCPU(cpl: 3) { _ in }], memory: guest.memory)
        let outcome = self.outcome
        runThread = try HostThread(name: "test-runner") { outcome.value = runner.run() }
        defer { finish(runner) }
        let handle = try XCTUnwrap(runner.vcpu(0))
        try waitUntil("the vCPU entered the guest") { if case .inGuest = handle.activity.place { return true } else { return false } }
        usleep(300_000)
        let activity = handle.activity
        guard case let .inGuest(duration) = activity.place else { return XCTFail("\(activity)") }
        XCTAssertGreaterThanOrEqual(duration, .milliseconds(300))
        XCTAssertTrue(activity.description.contains("in the guest for "), activity.description)
        // The guest's own position there: running its loop, at CPL 3.
        let position = try XCTUnwrap(handle.guestPosition())
        let rip = try XCTUnwrap(UInt64(position.drop { $0 != "x" }.dropFirst().prefix { $0.isHexDigit }, radix: 16))
        XCTAssertTrue(position.hasPrefix("runnable at rip 0x") && position.hasSuffix("(cpl 3)"), position)
        XCTAssertEqual(rip, MicroGuest.codeAddress, "the vCPU sits on its jmp $: \(position)")
    }
}
