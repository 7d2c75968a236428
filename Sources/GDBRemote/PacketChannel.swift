/// Reliable request/reply packets over a `Connection`: acks, retransmission on
/// `-`, checksum failures answered with `-`, every wait bounded by a deadline.
final class PacketChannel {
    let connection: Connection
    private var scanner: PacketScanner
    /// Packets that arrived while waiting for an ack, in order.
    private var queued: [[UInt8]] = []
    private var lastFrame: [UInt8] = []
    /// After `QStartNoAckMode` is accepted neither side sends acks ("Packets").
    var noAck = false
    /// Retransmissions (ours) or bad checksums (theirs) tolerated per packet.
    static let maxAttempts = 4
    /// Unsolicited packets kept while waiting for one ack; a peer sending more is flooding.
    static let maxQueued = 16
    /// Bytes read from the socket at a time.
    private static let readChunk = 64 * 1024

    init(connection: Connection, limit: Int = Packet.defaultLimit) {
        self.connection = connection
        scanner = PacketScanner(limit: limit)
    }

    var limit: Int { scanner.limit }

    private func nextEvent(deadline: Deadline, what: String) throws -> PacketEvent {
        while true {
            if let event = try scanner.next() { return event }
            scanner.append(try connection.receive(limit: Self.readChunk, deadline: deadline, what: what))
        }
    }

    /// Sends `payload` as one packet and waits for its ack.
    func send(_ payload: [UInt8], deadline: Deadline, what: String) throws {
        lastFrame = Packet.encode(payload)
        var attempts = 0
        var badChecksums = 0
        resend: while attempts < Self.maxAttempts {
            attempts += 1
            try connection.send(lastFrame, deadline: deadline, what: what)
            if noAck { return }
            let awaited = "the acknowledgment of \(what)"
            while true {
                switch try nextEvent(deadline: deadline, what: awaited) {
                case .ack: return
                case .nack: continue resend
                case let .packet(body):
                    // An unsolicited packet (QEMU's stop reply on connect) may come first.
                    guard queued.count < Self.maxQueued else {
                        throw GDBRemoteError.garbage("more than \(Self.maxQueued) packets instead of \(awaited)")
                    }
                    try connection.send([Packet.ack], deadline: deadline, what: what)
                    queued.append(try Packet.decode(body, limit: limit))
                case .badChecksum:
                    badChecksums += 1
                    if badChecksums >= Self.maxAttempts { throw GDBRemoteError.checksumFailures(attempts: badChecksums) }
                    try connection.send([Packet.nack], deadline: deadline, what: what)
                }
                try deadline.check(waitingFor: awaited)
            }
        }
        throw GDBRemoteError.checksumFailures(attempts: attempts)
    }

    /// Receives the next packet (decoded) before `deadline`.
    func receive(deadline: Deadline, what: String) throws -> [UInt8] {
        if !queued.isEmpty { return queued.removeFirst() }
        var badChecksums = 0
        while true {
            switch try nextEvent(deadline: deadline, what: what) {
            case let .packet(body):
                if !noAck { try connection.send([Packet.ack], deadline: deadline, what: what) }
                return try Packet.decode(body, limit: limit)
            case .badChecksum:
                badChecksums += 1
                if badChecksums >= Self.maxAttempts { throw GDBRemoteError.checksumFailures(attempts: badChecksums) }
                try connection.send([Packet.nack], deadline: deadline, what: what)
            case .nack:
                // The peer lost our last packet: send it again.
                if !lastFrame.isEmpty { try connection.send(lastFrame, deadline: deadline, what: what) }
            case .ack:
                break  // a late ack
            }
            // Acks and NACKs alone do not extend the wait.
            try deadline.check(waitingFor: what)
        }
    }

    /// Sends the interrupt byte (outside any packet).
    func sendInterrupt(deadline: Deadline) throws {
        try connection.send([Packet.interrupt], deadline: deadline, what: "the interrupt byte")
    }
}
