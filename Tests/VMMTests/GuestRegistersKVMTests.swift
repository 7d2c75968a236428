import CKVM
import Guest
import VMM
import XCTest

/// KVM's register structs to and from the shadow core's register model.
final class GuestRegistersKVMTests: XCTestCase {
    func testEveryFieldComesFromItsKVMField() {
        var regs = kvm_regs(), sregs = kvm_sregs()
        let general: [WritableKeyPath<kvm_regs, UInt64>] = [\.rax, \.rbx, \.rcx, \.rdx, \.rsi, \.rdi, \.rbp, \.rsp,
                                                           \.r8, \.r9, \.r10, \.r11, \.r12, \.r13, \.r14, \.r15, \.rip, \.rflags]
        for (index, path) in general.enumerated() { regs[keyPath: path] = 0x1000 + UInt64(index) }
        sregs.cs.selector = 0x33; sregs.ss.selector = 0x2B; sregs.ds.selector = 1; sregs.es.selector = 2
        sregs.fs.selector = 3; sregs.gs.selector = 4; sregs.fs.base = 0x7F00; sregs.gs.base = 0xFFFF_8880_0000_0000
        sregs.cr0 = 0x8005_0033; sregs.cr2 = 0xDEAD; sregs.cr3 = 0x1234_5000; sregs.cr4 = 0x3706F0; sregs.efer = 0xD01
        let guest = GuestRegisters(regs, sregs, kernelGSBase: 0x42)
        let read: [KeyPath<GuestRegisters, UInt64>] = [\.rax, \.rbx, \.rcx, \.rdx, \.rsi, \.rdi, \.rbp, \.rsp,
                                                       \.r8, \.r9, \.r10, \.r11, \.r12, \.r13, \.r14, \.r15, \.rip, \.rflags]
        XCTAssertEqual(read.map { guest[keyPath: $0] }, (0..<18).map { 0x1000 + UInt64($0) })
        XCTAssertEqual([guest.cs, guest.ss, guest.ds, guest.es, guest.fs, guest.gs], [0x33, 0x2B, 1, 2, 3, 4])
        XCTAssertEqual(guest.cpl, 3)
        XCTAssertEqual([guest.fsBase, guest.gsBase, guest.kernelGSBase], [0x7F00, 0xFFFF_8880_0000_0000, 0x42])
        XCTAssertEqual([guest.cr0, guest.cr2, guest.cr3, guest.cr4, guest.efer], [0x8005_0033, 0xDEAD, 0x1234_5000, 0x3706F0, 0xD01])

        var changed = guest
        changed.rax = 7; changed.rip = 0xFFFF_FFFF_8100_0000
        let written = changed.applied(to: regs)
        XCTAssertEqual(written.rax, 7)
        XCTAssertEqual(written.rip, 0xFFFF_FFFF_8100_0000)
        XCTAssertEqual(written.rbx, regs.rbx, "fields not changed stay")
    }
}
