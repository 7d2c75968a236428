import Synchronization
/// A client of the GDB remote serial protocol for an all-stop stub with one
/// thread per vCPU (QEMU's gdbstub). One caller thread at a time, except
/// `interrupt()` while another thread waits in `waitForStop`.
///
/// Every way out resumes the guest: `detach()` resumes and disconnects; the
/// client detaches when released, when `close()` is called while still
/// attached, and when the stream breaks (garbage, timeouts, a lost ack).
public final class GDBRemoteClient {
    /// Seconds to wait for each reply.
    public var timeout: Double
    /// The largest packet the stub accepts (qSupported `PacketSize`), bytes.
    public internal(set) var packetSize = GDBRemoteClient.defaultPacketSize
    /// What the stub said in qSupported: `name` -> `+`, `-`, `?` or a value.
    public internal(set) var features: [String: String] = [:]
    /// Registers the stub describes (from target.xml and its includes).
    public internal(set) var targetDescription = TargetDescription(registers: [])
    /// The threads (one per vCPU), in the stub's order.
    public internal(set) var threads: [ThreadID] = []
    /// Console output (`O` packets) received while the target ran, bounded.
    public internal(set) var consoleOutput: [UInt8] = []
    /// Whether the target is running (between `resume()` and a stop reply).
    public var isRunning: Bool { lock.withLock { _ in running } }
    /// False after `detach()`, `close()` or a broken stream.
    public internal(set) var isAttached = false
    /// What broke the stream (the stub closed it, a timeout...), if that is
    /// why the client is no longer attached: later calls report it.
    public internal(set) var breakage: GDBRemoteError?

    let channel: PacketChannel
    let lock = Mutex(())
    var running = false
    var multiprocess = false
    var useVCont = false
    var selectedThread: ThreadID?
    var physicalMode: Bool?
    /// Stop replies that arrived unasked (QEMU sends `T02` when a client
    /// connects to a running VM); the last few are kept.
    var unsolicitedStops: [StopReply] = []

    /// Without qSupported `PacketSize` a stub must take at least this ("Packets" > qSupported).
    static let defaultPacketSize = 400
    /// Packet sizes beyond this are treated as this (our reply buffer limit).
    static let maxPacketSize = 1 << 16
    /// Bytes of framing and command text around the data in `m`/`M`/`qXfer`.
    static let commandOverhead = 48
    /// The software breakpoint type in Z/z packets ("Packets" > Z0) and its
    /// kind: on x86 the length of the breakpoint instruction, 1 byte.
    static let softwareBreakpoint = 0, breakpointKind = 1
    /// Bounds on what a peer can make us collect.
    static let maxThreads = 4096, maxMonitorOutput = 1 << 20, maxXMLBytes = 1 << 20, maxConsoleOutput = 64 * 1024
    /// POSIX signal numbers in stop replies ("Stop Reply Packets" use GDB's
    /// signal numbering, which matches Linux for these).
    public static let sigint = 2, sigtrap = 5

    /// Connects to a stub at `address` ("unix:PATH" or "tcp:HOST:PORT").
    /// Every wait (the connection, the handshake, later requests) ends with
    /// `GDBRemoteError.cancelled` once `cancellation` is cancelled.
    public convenience init(address: String, timeout: Double = 5, cancellation: Cancellation? = nil) throws {
        let parsed = try GDBRemoteAddress(parsing: address)
        try self.init(connection: Connection(to: parsed, timeout: timeout, cancellation: cancellation), timeout: timeout)
    }

    /// Runs the handshake over an established connection: qSupported,
    /// optional no-ack mode, `?`, the target description, the thread list.
    public init(connection: Connection, timeout: Double = 5, packetLimit: Int = Packet.defaultLimit) throws {
        self.timeout = timeout
        channel = PacketChannel(connection: connection, limit: packetLimit)
        isAttached = true
        do {
            try handshake()
        } catch {
            // Leave the guest running whatever went wrong (best effort).
            abandon()
            throw GDBRemoteClient.explainHandshake(error)
        }
    }

    deinit { close() }

    func handshake() throws {
        let reply = try requestText("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386")
        for item in reply.split(separator: ";") {
            if let eq = item.firstIndex(of: "=") {
                features[String(item[..<eq])] = String(item[item.index(after: eq)...])
            } else if let sign = item.last, "+-?".contains(sign) {
                features[String(item.dropLast())] = String(sign)
            }
        }
        if let size = features["PacketSize"].flatMap({ Int($0, radix: 16) }), size >= 64 {
            packetSize = min(size, GDBRemoteClient.maxPacketSize)
        }
        multiprocess = features["multiprocess"] == "+"
        if features["QStartNoAckMode"] == "+" {
            if try requestText("QStartNoAckMode") == "OK" { channel.noAck = true }
        }
        _ = try haltReason()
        if features["qXfer:features:read"] == "+" {
            targetDescription = try TargetDescription.load { annex in try self.readFeature(annex) }
        } else {
            throw GDBRemoteError.unsupported(request: "qXfer:features:read (the stub gives no target description)")
        }
        threads = try readThreadList()
        let vcont = try requestText("vCont?")
        useVCont = vcont.hasPrefix("vCont") && vcont.split(separator: ";").contains("c")
    }

    /// Says what a handshake timeout most likely means.
    static func explainHandshake(_ error: Error) -> Error {
        if case let GDBRemoteError.timeout(what, seconds) = error, what.contains("qSupported") {
            return GDBRemoteError.timeout(waitingFor: "\(what); the peer is not a GDB stub, or another client holds it " +
                "(QEMU serves one client: the kernel accepts a second connection but QEMU never answers it)", seconds: seconds)
        }
        return error
    }

    // MARK: requests

    /// Sends `command` and returns the first reply that is not an unsolicited stop.
    func request(_ command: String) throws -> [UInt8] {
        guard isAttached else { throw detachedError }
        guard !isRunning else { throw GDBRemoteError.wrongState("'\(command)' needs the target stopped, but it is running") }
        let what = "the reply to '\(excerpt(Array(command.utf8), limit: 40))'"
        do {
            let deadline = Deadline(seconds: timeout)
            try channel.send(Array(command.utf8), deadline: deadline, what: what)
            while true {
                let reply = try channel.receive(deadline: deadline, what: what)
                if command != "?" && StopReply.looksLikeStop(reply) {
                    noteUnsolicited(try StopReply(parsing: reply, request: command))
                    try deadline.check(waitingFor: what)
                    continue
                }
                return reply
            }
        } catch let error as GDBRemoteError {
            breakIfFatal(error)
            throw error
        }
    }

    func requestText(_ command: String) throws -> String {
        String(decoding: try request(command), as: UTF8.self)
    }

    func noteUnsolicited(_ stop: StopReply) {
        unsolicitedStops.append(stop)
        if unsolicitedStops.count > 8 { unsolicitedStops.removeFirst() }
    }

    /// After a transport failure the stream cannot be trusted: resume the guest
    /// (best effort) and drop the connection.
    func breakIfFatal(_ error: GDBRemoteError) {
        switch error {
        case .timeout, .closed, .garbage, .packetTooLarge, .checksumFailures, .system, .cancelled:
            if isAttached { breakage = error }
            abandon()
        default: break
        }
    }

    /// Why a call cannot be made: what broke the stream, or a plain detach.
    var detachedError: GDBRemoteError {
        breakage.map { .broken(by: $0) } ?? .notConnected
    }

    /// Best-effort detach (a blind `D;1`/`D` with a short deadline), then close.
    func abandon() {
        guard isAttached else { return }
        isAttached = false
        let deadline = Deadline(seconds: min(timeout, 0.5))
        try? channel.connection.send(Packet.encode(detachCommand), deadline: deadline, what: "detach")
        channel.connection.close()
    }

    /// Throws unless `reply` is `OK`.
    func expectOK(_ reply: [UInt8], _ command: String) throws {
        if reply == Array("OK".utf8) { return }
        try throwIfError(reply, command)
        throw GDBRemoteError.badReply(request: command, reply: excerpt(reply))
    }

    /// Throws for the empty reply (unsupported) and `Enn` (error).
    func throwIfError(_ reply: [UInt8], _ command: String) throws {
        if reply.isEmpty { throw GDBRemoteError.unsupported(request: command) }
        if reply.count == 3, reply[0] == UInt8(ascii: "E"), let code = hexValue(reply[1], reply[2]) {
            throw GDBRemoteError.errorReply(request: command, code: Int(code))
        }
    }
}
