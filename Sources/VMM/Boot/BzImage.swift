import Guest

/// A parsed bzImage: the setup header and where the protected-mode kernel is in the file.
///
/// swvmm never runs the real-mode setup code: it uses the 64-bit boot protocol
/// (boot.rst, "64-bit Boot Protocol"), loading only the protected-mode part and
/// entering it at load address + 0x200 with a filled-in zero page.
public struct BzImage: Sendable {
    /// Offset of the 64-bit entry from the load address (boot.rst, "64-bit Boot Protocol").
    public static let entry64Offset: UInt64 = 0x200

    /// The setup header.
    public let header: SetupHeader
    /// The boot sector and setup sectors (file offsets 0 ..< `header.protectedModeOffset`):
    /// the setup header and the kernel version string live here.
    public let setup: [UInt8]
    /// The protected-mode kernel: the bytes swvmm loads into guest memory.
    public let protectedModeKernel: ImageContents

    /// Parses the image in `file`, reading only its setup sectors; the
    /// protected-mode kernel stays in the file until it is loaded.
    public init(file: ImageFile) throws {
        let headerArea = try file.read(offset: 0, count: min(file.size, SetupHeader.headerAreaEnd), what: "setup header")
        header = try SetupHeader(parsing: headerArea)
        setup = headerArea.count >= header.protectedModeOffset ? Array(headerArea.prefix(header.protectedModeOffset))
            : try file.read(offset: 0, count: min(file.size, header.protectedModeOffset), what: "setup sectors")
        protectedModeKernel = ImageContents(file: file, offset: header.protectedModeOffset, count: header.protectedModeSize)
        try validate(fileSize: file.size)
    }

    /// Checks that the file holds all the header declares and that the
    /// header's pointers stay inside the parts they point into.
    private func validate(fileSize: Int) throws {
        let needed = header.protectedModeOffset + header.protectedModeSize
        guard header.protectedModeSize > 0 else {
            throw BootError.malformedHeader(field: "syssize", detail: "protected-mode kernel size is 0")
        }
        guard fileSize >= needed else {
            throw BootError.truncated(what: "setup (\(header.setupSects) sectors) + protected-mode kernel (\(header.protectedModeSize) bytes)",
                                      needed: needed, actual: fileSize)
        }
        let payloadEnd = UInt64(header.payloadOffset) + UInt64(header.payloadLength)
        guard payloadEnd <= UInt64(header.protectedModeSize) else {
            throw BootError.malformedHeader(field: "payload_offset/payload_length",
                                            detail: "payload ends at \(payloadEnd), past the \(header.protectedModeSize)-byte protected-mode kernel")
        }
        // The loader adds these to the load address, at most max(pref_address, 1 MiB):
        // a sum past 2^64 is a corrupt header, not an address.
        let highestStart = max(header.prefAddress, Layout.highMemoryStart)
        _ = try BootError.checkedSum(highestStart, UInt64(header.initSize), fields: "pref_address + init_size")
        _ = try BootError.checkedSum(highestStart, UInt64(header.protectedModeSize), fields: "pref_address + syssize * 16")
        if header.kernelVersionPointer != 0 {
            let offset = Int(header.kernelVersionPointer) + 0x200
            guard offset < header.protectedModeOffset else {
                throw BootError.malformedHeader(field: "kernel_version", detail: "points to 0x\(hex(offset)), outside the setup code")
            }
        }
    }

    /// The kernel's version string (`kernel_version` + 0x200, boot.rst 0x20E), e.g.
    /// "6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
    public var kernelVersion: String? {
        guard header.kernelVersionPointer != 0 else { return nil }
        return ByteReader(setup).cString(at: Int(header.kernelVersionPointer) + 0x200)
    }

    /// The bytes of the setup header as they go into the zero page at 0x1F1.
    public var setupHeaderBytes: ArraySlice<UInt8> { setup[SetupHeader.startOffset..<header.headerEnd] }

    /// (label, value) rows for `swvmm image-info`.
    public func imageInfoReport() -> [(String, String)] {
        let h = header
        let load = LoadFlags.names.filter { h.loadFlags.contains($0.0) }.map(\.1)
        let xload = XLoadFlags.names.filter { h.extendedLoadFlags.contains($0.0) }.map(\.1)
        return [
            ("format", "bzImage"),
            ("kernel version", kernelVersion ?? "(not recorded)"),
            ("boot protocol", protocolString(h.version)),
            ("loadflags", "0x\(hex(h.loadflags)) \(load.isEmpty ? "(none)" : load.joined(separator: " "))"),
            ("xloadflags", "0x\(hex(h.xloadflags)) \(xload.isEmpty ? "(none)" : xload.joined(separator: " "))"),
            ("setup sectors", "\(h.setupSects)"),
            ("protected-mode kernel", "\(h.protectedModeSize) bytes at file offset 0x\(hex(h.protectedModeOffset))"),
            ("relocatable", h.relocatableKernel ? "yes" : "no"),
            ("preferred address", "0x\(hex(h.prefAddress))"),
            ("kernel alignment", "0x\(hex(h.kernelAlignment))"),
            ("init size", "0x\(hex(h.initSize)) (\(mebibytes(UInt64(h.initSize))) MiB)"),
            ("initrd address max", "0x\(hex(h.initrdAddrMax))"),
            ("command line size", "\(h.cmdlineSize)"),
        ]
    }
}
