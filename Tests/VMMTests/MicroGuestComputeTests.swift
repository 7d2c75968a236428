import CKVM
import Glibc
import Guest
@testable import VMM
import XCTest

/// Guest code computing on state the VMM gave it, several vCPUs on threads,
/// and stopping a running guest from outside.
final class MicroGuestComputeTests: XCTestCase {
    /// rax = rbx * rcx + rdx (imul rbx, rcx; add rbx, rdx; mov rax, rbx); out 0x80, al; hlt.
    /// It reports with a port write, which works at CPL 0 and, with IOPL 3, at
    /// CPL 3, and leaves the registers as they are (after a triple fault,
    /// AMD SVM resets them).
    static let multiplyAdd: [UInt8] = [0x48, 0x0F, 0xAF, 0xD9, 0x48, 0x01, 0xD3, 0x48, 0x89, 0xD8, 0xE6, 0x80, 0xF4]

    func testGuestComputesOnRegistersTheVMMSet() throws {
        for cpl: UInt8 in [0, 3] {
            let guest = try MicroGuest.make()
            try guest.load(Self.multiplyAdd)
            let vcpu = try guest.addVCPU(cpl: cpl) { regs in
                regs.rbx = 123_456_789; regs.rcx = 1_000_003; regs.rdx = 42
            }
            guard case let .portIO(io) = try vcpu.run(), io.port == 0x80 else { return XCTFail("CPL \(cpl): no port exit") }
            XCTAssertEqual(try vcpu.registers().rax, 123_456_789 * 1_000_003 + 42, "CPL \(cpl)")
        }
    }

    /// mov rax, [0xD0000000]; mov [0xD0000008], rax; hlt  (0xD0000000 is in the MMIO hole: no slot backs it)
    static let mmioReadThenWrite: [UInt8] = [
        0x48, 0xA1, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x00, 0x00, 0x00,       // movabs rax, [0xD0000000]
        0x48, 0xA3, 0x08, 0x00, 0x00, 0xD0, 0x00, 0x00, 0x00, 0x00,       // movabs [0xD0000008], rax
        0xF4,
    ]

    func testMMIOReadAndWriteExits() throws {
        let guest = try MicroGuest.make()
        // Map the MMIO address's 1 GiB region: PDPT[3] -> a PD with a 2 MiB page at 0xD0000000.
        try guest.memory.writeInteger(physical: MicroGuest.pdpt + 3 * 8, UInt64(0x4000 | 0x7))
        try guest.memory.writeInteger(physical: 0x4000 + 0x80 * 8, UInt64(0xD000_0000 | 0x87))
        try guest.load(Self.mmioReadThenWrite)
        let vcpu = try guest.addVCPU(cpl: 3)

        guard case let .mmio(read) = try vcpu.run() else { return XCTFail("expected an MMIO read exit") }
        XCTAssertFalse(read.isWrite)
        XCTAssertEqual(read.address, 0xD000_0000)
        XCTAssertEqual(read.data.count, 8)
        let value: UInt64 = 0x1122_3344_5566_7788
        withUnsafeBytes(of: value.littleEndian) { read.data.copyMemory(from: $0) }

        guard case let .mmio(write) = try vcpu.run() else { return XCTFail("expected an MMIO write exit") }
        XCTAssertTrue(write.isWrite)
        XCTAssertEqual(write.address, 0xD000_0008)
        XCTAssertEqual(write.data.load(as: UInt64.self), value, "the guest wrote back what the VMM answered")
    }

    /// Each vCPU writes its own id (rdi, set by the VMM) to port 0x80 + id, then loops `count` times and writes again.
    /// mov edx, edi; add edx, 0x80; mov eax, edi; out dx, al; mov ecx, 2000000; l: dec ecx; jnz l; out dx, al; jmp $
    static let perCPUWriter: [UInt8] = [
        0x89, 0xFA, 0x81, 0xC2, 0x80, 0x00, 0x00, 0x00, 0x89, 0xF8, 0xEE,
        0xB9, 0x80, 0x84, 0x1E, 0x00, 0xFF, 0xC9, 0x75, 0xFC, 0xEE, 0xEB, 0xFE,
    ]

    func testTwoVCPUsRunOnTwoThreads() throws {
        let guest = try MicroGuest.make()
        try guest.load(Self.perCPUWriter)
        let vcpus = try (0..<2).map { id in try guest.addVCPU(cpl: 3) { $0.rdi = UInt64(id) } }
        let results = ThreadResults(count: 2)
        let threads = try vcpus.enumerated().map { index, vcpu in
            try HostThread {
                var ports: [UInt16] = []
                for _ in 0..<2 {
                    if case let .portIO(io) = try? vcpu.run() {
                        ports.append(io.port)
                        results.record(index, ports: ports, threadID: pthread_self())
                    }
                }
            }
        }
        threads.forEach { $0.join() }
        for index in 0..<2 {
            XCTAssertEqual(results.ports[index], [0x80 + UInt16(index), 0x80 + UInt16(index)], "vCPU \(index) ran its own code path twice")
        }
        XCTAssertNotEqual(results.threadIDs[0], results.threadIDs[1], "each vCPU ran on its own thread")
    }

    /// jmp $ — a guest that never exits by itself.
    func testRunningGuestStopsCleanlyWhenAskedFromAnotherThread() throws {
        let guest = try MicroGuest.make()
        try guest.load([0xEB, 0xFE])
        let vcpu = try guest.addVCPU(cpl: 3)
        let exitName = LockedBox<String?>(nil)
        let runner = try HostThread { exitName.value = (try? vcpu.run())?.name ?? "error" }
        usleep(50_000) // let it spin inside KVM_RUN
        vcpu.requestExit()
        runner.join()
        XCTAssertEqual(exitName.value, "INTR")
        XCTAssertEqual(try vcpu.registers().rip, MicroGuest.codeAddress, "stopped at the loop, state intact")
        // The request stays in force until cleared, so a racing run() cannot miss it.
        guard case .interrupted = try vcpu.run() else { return XCTFail("request did not persist") }
    }
}
