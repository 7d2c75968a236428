/// The parsers of this module as the fuzz targets in `Fuzz/` call them:
/// arbitrary bytes in, a result or a thrown error out. Each must return for
/// any input (no trap, no hang); the targets check the results' invariants.
public enum GDBRemoteFuzzing {
    /// The packet limit the targets use, small so oversized inputs are reached.
    public static let packetLimit = 4096

    /// `bytes` as a stub's stream: framing, checksums, then each good
    /// packet's escapes and run-length decoding. Returns the decoded packets
    /// up to the first garbage or incomplete packet.
    public static func packets(inStream bytes: [UInt8]) -> [[UInt8]] {
        var scanner = PacketScanner(limit: packetLimit)
        scanner.append(bytes)
        var packets: [[UInt8]] = []
        while let event = try? scanner.next() {
            if case let .packet(body) = event, let decoded = try? Packet.decode(body, limit: packetLimit) {
                packets.append(decoded)
            }
        }
        return packets
    }

    /// `payload` framed with `Packet.encode` and read back through the
    /// scanner and decoder: equal to `payload` for every payload.
    public static func roundTrip(_ payload: [UInt8]) throws -> [UInt8] {
        var scanner = PacketScanner(limit: max(packetLimit, payload.count * 2 + 8))
        scanner.append(Packet.encode(payload))
        guard case let .packet(body)? = try scanner.next() else {
            throw GDBRemoteError.garbage("an encoded packet did not scan as one packet")
        }
        return try Packet.decode(body, limit: scanner.limit)
    }

    /// `bytes` as a stop reply; its description, or nil when refused.
    public static func stopReply(_ bytes: [UInt8]) -> String? {
        (try? StopReply(parsing: bytes, request: "fuzz")).map { "\($0)" }
    }

    /// `bytes` as a thread id (`TID` or `pPID.TID`); its description, or nil.
    public static func threadID(_ bytes: [UInt8]) -> String? {
        ThreadID(parsing: String(decoding: bytes, as: UTF8.self))?.description
    }

    /// `bytes` as a `g` reply: the register block, or nil when refused.
    public static func registerBlock(_ bytes: [UInt8]) -> [UInt8?]? {
        try? GDBRemoteClient.decodeRegisterBlock(bytes)
    }

    /// `text` as QEMU's `info registers -a` output: CPU `cpu`'s IDTR, if found.
    public static func monitorIDTRegister(_ text: String, cpu: Int) -> (base: UInt64, limit: UInt16)? {
        MonitorRegisters.idtRegister(in: text, cpuIndex: cpu).map { ($0.base, $0.limit) }
    }
}
