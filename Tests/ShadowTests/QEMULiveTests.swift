import XCTest
import Foundation
import Guest
import Shadow
@testable import GDBRemote

/// The GDB remote client and target against real QEMU 7.2/TCG, with no kernel:
/// the vCPUs sit in SeaBIOS (real mode, its timer interrupt still ticking the
/// BIOS data area counter at physical 0x46C, 18.2 Hz), which is enough to
/// exercise the whole stub.
final class QEMULiveTests: XCTestCase {
    var guest: QEMUGuest?
    /// BIOS data area: timer ticks since midnight, incremented by IRQ0 (18.2 Hz).
    let biosTickCounter: UInt64 = 0x46C

    override func setUpWithError() throws { guest = try QEMUGuest() }
    override func tearDown() { guest?.stop(); guest = nil }

    func connect(timeout: Double = 5) throws -> GDBRemoteTarget {
        try GDBRemoteTarget(address: guest!.address, timeout: timeout)
    }

    /// Reads the tick counter like a client that crashes: it never detaches,
    /// so QEMU keeps the guest paused afterwards.
    func readTicksAndVanish() throws -> UInt32 {
        let channel = PacketChannel(connection: try Connection(to: .unix(path: guest!.socketPath), timeout: 2))
        func ask(_ command: String) throws -> [UInt8] {
            try channel.send(Array(command.utf8), deadline: Deadline(seconds: 2), what: command)
            while true {
                let reply = try channel.receive(deadline: Deadline(seconds: 2), what: command)
                if !StopReply.looksLikeStop(reply) { return reply }
            }
        }
        _ = try ask("qSupported")
        XCTAssertEqual(try ask("Qqemu.PhyMemMode:1"), Array("OK".utf8))
        let bytes = try XCTUnwrap(Hex.decode(try ask("m46c,4")))
        channel.connection.close()
        return UInt32(littleEndianBytes: bytes)
    }

    func testThreadsRegistersAndDescription() throws {
        let target = try connect()
        XCTAssertEqual(target.vcpus, [VCPUID(0), VCPUID(1)])
        let d = target.client.targetDescription
        for name in ["rax", "rip", "eflags", "cs", "fs_base", "gs_base", "k_gs_base", "cr0", "cr3", "cr4", "efer"] {
            XCTAssertNotNil(d.register(named: name), name)
        }
        // QEMU 7.2 comments cs_base..es_base out of i386-64bit.xml.
        XCTAssertNil(d.register(named: "ss_base"))
        let r0 = try target.registers(of: VCPUID(0))
        // p and g agree on the XML's numbers.
        try target.client.selectThread(target.client.threads[0])
        let cr0 = try target.client.readRegister(try XCTUnwrap(d.register(named: "cr0")).number)
        XCTAssertEqual(UInt64(littleEndianBytes: cr0), r0.cr0)
        XCTAssertEqual(r0.cr0 & 0x10, 0x10, "CR0.ET is always set on QEMU's x86")
        // The monitor agrees on CR0 too.
        let info = try target.client.monitor("info registers")
        XCTAssertTrue(info.contains("IDT="), info)
        XCTAssertTrue(info.contains(String(format: "CR0=%08x", r0.cr0)), info)
        try target.detach()
    }

    func testSetRegistersRoundTrip() throws {
        let target = try connect()
        let vcpu = VCPUID(1)
        let before = try target.registers(of: vcpu)
        var changed = before
        // The vCPU is in real mode: QEMU's stub then writes only the low 32 bits
        // of rax..rdi and ignores r8..r15 (they do not exist outside long mode).
        changed.rax = 0x1122_3344
        changed.rbx = 0xDEAD_BEEF
        try target.setRegisters(changed, of: vcpu)
        XCTAssertEqual(try target.registers(of: vcpu), changed)
        XCTAssertEqual(try target.registers(of: VCPUID(0)).rax == changed.rax, false)
        try target.setRegisters(before, of: vcpu)
        XCTAssertEqual(try target.registers(of: vcpu), before)
    }

    func testPhysicalMemoryRoundTripAcrossChunks() throws {
        let target = try connect()
        // 5000 bytes: three `m`/`M` packets at QEMU's PacketSize.
        let pattern = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try target.writeBytes(physical: 0x100000, pattern)
        XCTAssertEqual(try target.readBytes(physical: 0x100000, count: pattern.count), pattern)
        try target.writeInteger(physical: 0x100000, UInt64(0x0123_4567_89AB_CDEF))
        XCTAssertEqual(try target.readInteger(physical: 0x100000, as: UInt64.self), 0x0123_4567_89AB_CDEF)
        XCTAssertThrowsError(try target.readBytes(physical: UInt64.max - 2, count: 8))
    }

    func testTimeoutStopsTheGuestAgain() throws {
        let target = try connect()
        let start = Date()
        XCTAssertEqual(try target.resume(until: .milliseconds(300)), .timeout)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
        XCTAssertFalse(target.client.isRunning)
        _ = try target.registers(of: VCPUID(0))
    }

    func testBreakpointOnTheTimerInterrupt() throws {
        let target = try connect()
        // SeaBIOS fills the interrupt vectors during POST: run until its timer ticks.
        for _ in 0..<30 where try target.readInteger(physical: biosTickCounter, as: UInt32.self) == 0 {
            XCTAssertEqual(try target.resume(until: .milliseconds(500)), .timeout)
        }
        // The real-mode interrupt vector 8 (IRQ0) at physical 0x20: offset, segment.
        let offset = try target.readInteger(physical: 0x20, as: UInt16.self)
        let segment = try target.readInteger(physical: 0x22, as: UInt16.self)
        let handler = UInt64(segment) << 4 + UInt64(offset)
        try target.insertBreakpoint(at: handler)
        let event = try target.resume(until: .seconds(10))
        guard case let .breakpoint(vcpu, registers) = event else { return XCTFail("\(event)") }
        XCTAssertEqual(vcpu, VCPUID(0))
        XCTAssertEqual(UInt64(registers.cs) << 4 + registers.rip, handler)
        // Declined hits are the target's to step past: the guest runs on
        // through the handler (each pass is one BIOS tick) to the wanted hit.
        let ticks = try target.readInteger(physical: biosTickCounter, as: UInt32.self)
        var offered = 0
        let fourth = try target.resume(until: .seconds(10)) { _, _ in
            offered += 1
            return offered == 4
        }
        guard case .breakpoint = fourth else { return XCTFail("\(fourth)") }
        XCTAssertEqual(offered, 4)
        XCTAssertGreaterThanOrEqual(try target.readInteger(physical: biosTickCounter, as: UInt32.self) &- ticks, 3)
        try target.removeBreakpoint(at: handler)
        XCTAssertEqual(try target.resume(until: .milliseconds(200)), .timeout)
    }

    func testStopFromAnotherThread() throws {
        let target = try connect()
        let stopper = Thread {
            usleep(300_000)
            try? target.stop()
        }
        stopper.start()
        let start = Date()
        let event = try target.resume(until: .seconds(20))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        guard case .interrupted = event else { return XCTFail("\(event)") }
    }

    func testDetachResumesAndAPausedGuestCanBeRecovered() throws {
        // A client that vanishes without detaching leaves the guest paused...
        let t1 = try readTicksAndVanish()
        usleep(600_000)
        let t2 = try readTicksAndVanish()
        XCTAssertEqual(t1, t2, "QEMU keeps the VM paused after a client disconnects without D")
        // ...and a proper client's detach resumes it.
        try connect().detach()
        usleep(600_000)
        let t3 = try readTicksAndVanish()
        XCTAssertGreaterThanOrEqual(t3, t2 &+ 5, "ticks at 18.2 Hz over 0.6 s after detach")
        // Releasing a target without calling detach() detaches too.
        do { _ = try connect() }
        usleep(600_000)
        XCTAssertGreaterThanOrEqual(try readTicksAndVanish(), t3 &+ 5)
    }

    func testSecondClientGetsAClearError() throws {
        let first = try connect()
        XCTAssertThrowsError(try GDBRemoteClient(address: guest!.address, timeout: 1)) { error in
            XCTAssertTrue("\(error)".contains("another client holds it"), "\(error)")
        }
        // The first client is unaffected.
        _ = try first.registers(of: VCPUID(0))
        try first.detach()
    }
}
