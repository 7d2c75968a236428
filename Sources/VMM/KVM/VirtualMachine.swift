import CKVM
import Glibc

/// A KVM virtual machine (the fd KVM_CREATE_VM returns): memory slots, the
/// in-kernel interrupt controllers, and the factory for its vCPUs.
public final class VirtualMachine: @unchecked Sendable {
    let fd: FileDescriptor
    /// The system this VM came from; kept alive as long as the VM.
    public let system: KVMSystem
    private var nextSlot: UInt32 = 0

    init(fd: FileDescriptor, system: KVMSystem) throws {
        self.fd = fd
        self.system = system
    }

    /// Maps `size` bytes of host memory at `host` into the guest at `guestAddress`
    /// (KVM_SET_USER_MEMORY_REGION, next free slot). Returns the slot number.
    @discardableResult
    public func mapMemory(guestAddress: UInt64, size: UInt64, host: UnsafeMutableRawPointer, readOnly: Bool = false) throws -> UInt32 {
        var region = kvm_userspace_memory_region()
        region.slot = nextSlot
        region.flags = readOnly ? UInt32(KVM_MEM_READONLY) : 0
        region.guest_phys_addr = guestAddress
        region.memory_size = size
        region.userspace_addr = UInt64(UInt(bitPattern: host))
        try fd.ioctl(CKVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION (slot \(nextSlot), guest 0x\(String(guestAddress, radix: 16)), \(size) bytes)")
        nextSlot += 1
        return region.slot
    }

    /// Maps every region of `memory` into the guest, one slot each.
    public func mapMemory(_ memory: GuestMemory) throws {
        for (index, region) in memory.regions.enumerated() {
            try mapMemory(guestAddress: region.guestAddress, size: region.size, host: memory.hostAddress(ofRegion: index))
        }
    }

    /// KVM_SET_TSS_ADDR: three pages of guest-physical space KVM needs on Intel
    /// hosts (for real-mode emulation); must not overlap RAM.
    public func setTSSAddress(_ address: UInt64) throws {
        try fd.ioctl(CKVM_SET_TSS_ADDR, value: UInt(address), "KVM_SET_TSS_ADDR")
    }

    /// KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map on Intel hosts.
    public func setIdentityMapAddress(_ address: UInt64) throws {
        var value = address
        try fd.ioctl(CKVM_SET_IDENTITY_MAP_ADDR, &value, "KVM_SET_IDENTITY_MAP_ADDR")
    }

    /// KVM_CREATE_IRQCHIP: in-kernel PIC pair, IOAPIC and per-vCPU local APICs.
    public func createInterruptController() throws {
        try fd.ioctl(CKVM_CREATE_IRQCHIP, value: 0, "KVM_CREATE_IRQCHIP")
    }

    /// KVM_CREATE_PIT2: the in-kernel 8254 timer on IRQ 0.
    public func createTimer() throws {
        var config = kvm_pit_config()
        try fd.ioctl(CKVM_CREATE_PIT2, &config, "KVM_CREATE_PIT2")
    }

    /// KVM_IRQ_LINE: drives interrupt line `line` (a GSI: ISA IRQs 0-15 reach
    /// both the PIC and the IOAPIC) to `level`.
    public func setInterruptLine(_ line: UInt32, level: Bool) throws {
        var irq = kvm_irq_level()
        irq.irq = line
        irq.level = level ? 1 : 0
        try fd.ioctl(CKVM_IRQ_LINE, &irq, "KVM_IRQ_LINE (\(line))")
    }

    /// Creates vCPU `id` (its initial APIC id) and maps its run area.
    public func createVirtualCPU(id: Int) throws -> VirtualCPU {
        let raw = try fd.ioctl(CKVM_CREATE_VCPU, value: UInt(id), "KVM_CREATE_VCPU (\(id))")
        return try VirtualCPU(fd: FileDescriptor(owning: raw), id: id, runAreaSize: system.vcpuRunAreaSize(), machine: self)
    }
}
