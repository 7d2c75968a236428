import Glibc
import Guest

/// Everything that can go wrong reading a kernel image or laying out a boot.
///
/// Each case carries the numbers a user needs to fix the problem; `description`
/// is the message `swvmm` prints.
public enum BootError: Error, Equatable, CustomStringConvertible {
    /// open(2)/read(2)/fstat(2) failed on the kernel (or initrd) file.
    case fileUnreadable(path: String, errno: Int32)
    /// The kernel or initrd is a FIFO, a device or a socket: swvmm reads images
    /// by position and must not wait on a writer (or read /dev/zero forever).
    case notARegularFile(path: String, kind: String)
    /// The initrd file is empty: booting without it is what leaving out `--initrd` does.
    case emptyInitrd(path: String)
    /// The bytes are neither a bzImage nor an ELF file.
    case notAKernel(reason: String)
    /// The file is shorter than what its own headers declare.
    case truncated(what: String, needed: Int, actual: Int)
    /// The boot sector does not end in 0xAA55 (boot.rst: boot_flag at 0x1FE).
    case badBootFlag(found: UInt16)
    /// The boot protocol is older than swvmm's 64-bit entry needs.
    case protocolTooOld(version: UInt16, required: UInt16)
    /// The kernel has no 64-bit entry point (xloadflags lacks XLF_KERNEL_64).
    case no64BitEntry(xloadflags: UInt16)
    /// A header field is inconsistent (a pointer outside the file, an overlong header...).
    case malformedHeader(field: String, detail: String)
    /// The ELF file could not be read.
    case elf(ELFError)
    /// A PT_LOAD program header is inconsistent in itself (`index` counts PT_LOAD headers from 0).
    case badLoadSegment(index: Int, detail: String)
    /// The ELF file is not a 64-bit x86 executable.
    case notX86_64(elfClass: UInt8, machine: UInt16)
    /// The ELF file has no PT_LOAD segment.
    case noLoadableSegments
    /// The ELF entry point is in none of the loaded segments.
    case entryOutsideSegments(entry: UInt64)
    /// The command line is longer than the kernel (or swvmm) accepts.
    case commandLineTooLong(length: Int, limit: Int)
    /// The command line contains a NUL byte, which would silently truncate it.
    case commandLineContainsNUL(offset: Int)
    /// Guest RAM is too small for the fixed boot layout.
    case memoryTooSmall(size: UInt64, needed: UInt64)
    /// The kernel (and its decompression area) does not fit in RAM where it must go.
    case kernelDoesNotFit(loadAddress: UInt64, size: UInt64, memoryEnd: UInt64)
    /// An ELF kernel asks to be loaded below 1 MiB, where the zero page, the
    /// page tables and the MP table live (see `Layout`).
    case kernelBelowHighMemory(loadAddress: UInt64)
    /// The initrd does not fit between the kernel's working area and its top limit.
    case initrdDoesNotFit(size: UInt64, limit: UInt64, kernelEnd: UInt64)
    /// More vCPUs than the MP table (8-bit APIC ids, one EBDA KiB) can describe.
    case tooManyCPUs(count: Int, maximum: Int)
    /// More e820 entries than `boot_params.e820_table` holds.
    case tooManyE820Entries(count: Int, maximum: Int)
    /// The ACPI tables' address is not 64-byte aligned or not below 4 GiB (a layout mistake in swvmm).
    case acpiTablesMisplaced(address: UInt64)
    /// Writing a boot structure into guest memory failed.
    case guestMemory(what: String, PhysicalMemoryError)

    public var description: String {
        switch self {
        case let .fileUnreadable(path, code):
            return "cannot read \(path): \(errnoText(code))"
        case let .notARegularFile(path, kind):
            return "\(path) is \(kind), not a regular file; swvmm reads kernels and initrds only from regular files"
        case let .emptyInitrd(path):
            return "initrd \(path) is empty (leave out --initrd to boot without one)"
        case let .notAKernel(reason):
            return "not a Linux kernel image (neither a bzImage nor an ELF vmlinux): \(reason)"
        case let .truncated(what, needed, actual):
            return "kernel image is truncated: \(what) needs \(needed) bytes, the file has \(actual)"
        case let .badBootFlag(found):
            return "bad boot sector signature 0x\(hex(found)) at 0x1FE (expected 0xAA55)"
        case let .protocolTooOld(version, required):
            return "kernel boot protocol \(protocolString(version)) is too old: swvmm needs \(protocolString(required)) or later (Linux 3.8+) for the 64-bit entry"
        case let .no64BitEntry(flags):
            return "kernel has no 64-bit entry point (xloadflags 0x\(hex(flags)) lacks XLF_KERNEL_64); build it with CONFIG_X86_64"
        case let .malformedHeader(field, detail):
            return "malformed setup header: \(field): \(detail)"
        case let .elf(error):
            return "ELF kernel: \(error)"
        case let .badLoadSegment(index, detail):
            return "ELF kernel: PT_LOAD segment \(index): \(detail)"
        case let .notX86_64(elfClass, machine):
            return "ELF kernel is not x86-64 (class \(elfClass), machine \(machine))"
        case .noLoadableSegments:
            return "ELF kernel has no PT_LOAD segments"
        case let .entryOutsideSegments(entry):
            return "ELF entry point 0x\(hex(entry)) is outside every PT_LOAD segment"
        case let .commandLineTooLong(length, limit):
            return "command line is \(length) bytes, the kernel accepts at most \(limit)"
        case let .commandLineContainsNUL(offset):
            return "command line contains a NUL byte at offset \(offset)"
        case let .memoryTooSmall(size, needed):
            return "guest memory of \(size >> 20) MiB is too small: at least \(needed >> 20) MiB needed"
        case let .kernelBelowHighMemory(load):
            return "kernel segment at 0x\(hex(load)) is below 1 MiB (0x\(hex(Layout.highMemoryStart))), where swvmm keeps its boot structures"
        case let .kernelDoesNotFit(load, size, end):
            return "kernel needs \(size >> 20) MiB at 0x\(hex(load)) but RAM below the MMIO hole ends at 0x\(hex(end))"
        case let .initrdDoesNotFit(size, limit, kernelEnd):
            return "initrd (\(mebibytes(size)) MiB) does not fit below 0x\(hex(limit)) above the kernel's working area ending at 0x\(hex(kernelEnd))"
        case let .tooManyCPUs(count, maximum):
            return "\(count) vCPUs requested, the MP table supports at most \(maximum)"
        case let .tooManyE820Entries(count, maximum):
            return "\(count) e820 entries, boot_params holds at most \(maximum)"
        case let .acpiTablesMisplaced(address):
            return "swvmm's ACPI tables cannot be placed at 0x\(String(address, radix: 16)) (need 64-byte alignment below 4 GiB)"
        case let .guestMemory(what, error):
            return "writing \(what) into guest memory: \(error)"
        }
    }
}

extension BootError {
    /// `base + addend`, or `malformedHeader` naming `fields` when the sum does not fit in 64 bits.
    static func checkedSum(_ base: UInt64, _ addend: UInt64, fields: String) throws -> UInt64 {
        let (sum, overflow) = base.addingReportingOverflow(addend)
        guard !overflow else {
            throw BootError.malformedHeader(field: fields, detail: "0x\(hex(base)) + 0x\(hex(addend)) overflows 64 bits")
        }
        return sum
    }
}

/// "2.15" for 0x020F.
func protocolString(_ version: UInt16) -> String { "\(version >> 8).\(format2(version & 0xFF))" }

private func format2(_ minor: UInt16) -> String { minor < 10 ? "0\(minor)" : "\(minor)" }

/// Size in MiB, rounded up, so a 100-byte initrd reads "1 MiB", not "0 MiB".
/// Written without `size + 2^20 - 1`, which overflows for sizes near 2^64.
func mebibytes(_ size: UInt64) -> UInt64 { (size >> 20) + (size & ((1 << 20) - 1) == 0 ? 0 : 1) }
