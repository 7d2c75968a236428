import Glibc
import Guest
import VMM

// The bzImage setup-header parser and the ELF loader, then the boot loader's
// layout of whatever parsed, into a guest memory that checks every write.

/// Guest RAM the target lays kernels out in: 256 MiB, below the MMIO hole.
private let fuzzMemoryRegions = GuestMemory.layout(size: 256 << 20)

/// Checks each write against the regions and discards the bytes.
private final class CheckedDiscardingMemory: PhysicalMemory {
    func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try check(address, buffer.count)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        try check(address, buffer.count)
    }

    private func check(_ address: UInt64, _ count: Int) throws {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, fuzzMemoryRegions.contains(where: { address >= $0.guestAddress && end <= $0.end }) else {
            throw PhysicalMemoryError.outOfRange(address: address, length: count)
        }
    }
}

/// The image file the loader reads (swvmm reads kernels only from files).
private let imagePath: String = {
    let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(directory)/swvmm-fuzz-kernel-\(getpid())"
}()

func fuzzKernelImage(_ bytes: [UInt8]) {
    let fd = open(imagePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    fuzzCheck(fd >= 0, "cannot create \(imagePath)")
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    fuzzCheck(written == bytes.count, "short write to \(imagePath)")

    // The loaded image reads through its own descriptor: the name can go now,
    // so no run leaves a file behind.
    let loaded = try? KernelImage.load(path: imagePath)
    unlink(imagePath)
    guard let image = loaded else { return }
    _ = image.imageInfoReport()
    let configuration = BootConfiguration(memoryRegions: fuzzMemoryRegions, cpuCount: 1,
                                          commandLine: "console=ttyS0")
    guard let plan = try? BootLoader.load(image, configuration: configuration, into: CheckedDiscardingMemory()) else {
        return
    }
    fuzzCheck(plan.loadAddress <= plan.kernelEnd, "kernel ends at \(plan.kernelEnd) before its load address \(plan.loadAddress)")
    if let initrd = plan.initrd { fuzzCheck(initrd.address >= plan.kernelEnd, "initrd overlaps the kernel") }
}
