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
    /// The whole file.
    public let bytes: [UInt8]

    /// Parses `bytes`, checking the header and that the file holds all it declares.
    public init(bytes: [UInt8]) throws {
        header = try SetupHeader(parsing: bytes)
        self.bytes = bytes
        let needed = header.protectedModeOffset + header.protectedModeSize
        guard header.protectedModeSize > 0 else {
            throw BootError.malformedHeader(field: "syssize", detail: "protected-mode kernel size is 0")
        }
        guard bytes.count >= needed else {
            throw BootError.truncated(what: "setup (\(header.setupSects) sectors) + protected-mode kernel (\(header.protectedModeSize) bytes)",
                                      needed: needed, actual: bytes.count)
        }
        let payloadEnd = UInt64(header.payloadOffset) + UInt64(header.payloadLength)
        guard payloadEnd <= UInt64(header.protectedModeSize) else {
            throw BootError.malformedHeader(field: "payload_offset/payload_length",
                                            detail: "payload ends at \(payloadEnd), past the \(header.protectedModeSize)-byte protected-mode kernel")
        }
        if header.kernelVersionPointer != 0 {
            let offset = Int(header.kernelVersionPointer) + 0x200
            guard offset < header.protectedModeOffset else {
                throw BootError.malformedHeader(field: "kernel_version", detail: "points to 0x\(hex(offset)), outside the setup code")
            }
        }
    }

    /// The protected-mode kernel: the bytes swvmm loads into guest memory.
    public var protectedModeKernel: ArraySlice<UInt8> {
        bytes[header.protectedModeOffset..<(header.protectedModeOffset + header.protectedModeSize)]
    }

    /// The kernel's version string (`kernel_version` + 0x200, boot.rst 0x20E), e.g.
    /// "6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
    public var kernelVersion: String? {
        guard header.kernelVersionPointer != 0 else { return nil }
        return ByteReader(bytes).cString(at: Int(header.kernelVersionPointer) + 0x200)
    }

    /// The bytes of the setup header as they go into the zero page at 0x1F1.
    public var setupHeaderBytes: ArraySlice<UInt8> { bytes[SetupHeader.startOffset..<header.headerEnd] }

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
