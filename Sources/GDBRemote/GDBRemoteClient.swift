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
    public private(set) var packetSize = GDBRemoteClient.defaultPacketSize
    /// What the stub said in qSupported: `name` -> `+`, `-`, `?` or a value.
    public private(set) var features: [String: String] = [:]
    /// Registers the stub describes (from target.xml and its includes).
    public private(set) var targetDescription = TargetDescription(registers: [])
    /// The threads (one per vCPU), in the stub's order.
    public private(set) var threads: [ThreadID] = []
    /// Console output (`O` packets) received while the target ran, bounded.
    public private(set) var consoleOutput: [UInt8] = []
    /// Whether the target is running (between `resume()` and a stop reply).
    public var isRunning: Bool { lock.withLock { _ in running } }
    /// False after `detach()`, `close()` or a broken stream.
    public private(set) var isAttached = false
    /// What broke the stream (the stub closed it, a timeout...), if that is
    /// why the client is no longer attached: later calls report it.
    public private(set) var breakage: GDBRemoteError?

    private let channel: PacketChannel
    private let lock = Mutex(())
    private var running = false
    private var multiprocess = false
    private var useVCont = false
    private var selectedThread: ThreadID?
    private var physicalMode: Bool?
    /// Stop replies that arrived unasked (QEMU sends `T02` when a client
    /// connects to a running VM); the last few are kept.
    private var unsolicitedStops: [StopReply] = []

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

    private func handshake() throws {
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
    private static func explainHandshake(_ error: Error) -> Error {
        if case let GDBRemoteError.timeout(what, seconds) = error, what.contains("qSupported") {
            return GDBRemoteError.timeout(waitingFor: "\(what); the peer is not a GDB stub, or another client holds it " +
                "(QEMU serves one client: the kernel accepts a second connection but QEMU never answers it)", seconds: seconds)
        }
        return error
    }

    // MARK: requests

    /// Sends `command` and returns the first reply that is not an unsolicited stop.
    private func request(_ command: String) throws -> [UInt8] {
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

    private func requestText(_ command: String) throws -> String {
        String(decoding: try request(command), as: UTF8.self)
    }

    private func noteUnsolicited(_ stop: StopReply) {
        unsolicitedStops.append(stop)
        if unsolicitedStops.count > 8 { unsolicitedStops.removeFirst() }
    }

    /// After a transport failure the stream cannot be trusted: resume the guest
    /// (best effort) and drop the connection.
    private func breakIfFatal(_ error: GDBRemoteError) {
        switch error {
        case .timeout, .closed, .garbage, .packetTooLarge, .checksumFailures, .system, .cancelled:
            if isAttached { breakage = error }
            abandon()
        default: break
        }
    }

    /// Why a call cannot be made: what broke the stream, or a plain detach.
    private var detachedError: GDBRemoteError {
        breakage.map { .broken(by: $0) } ?? .notConnected
    }

    /// Best-effort detach (a blind `D;1`/`D` with a short deadline), then close.
    private func abandon() {
        guard isAttached else { return }
        isAttached = false
        let deadline = Deadline(seconds: min(timeout, 0.5))
        try? channel.connection.send(Packet.encode(detachCommand), deadline: deadline, what: "detach")
        channel.connection.close()
    }

    /// Throws unless `reply` is `OK`.
    private func expectOK(_ reply: [UInt8], _ command: String) throws {
        if reply == Array("OK".utf8) { return }
        try throwIfError(reply, command)
        throw GDBRemoteError.badReply(request: command, reply: excerpt(reply))
    }

    /// Throws for the empty reply (unsupported) and `Enn` (error).
    private func throwIfError(_ reply: [UInt8], _ command: String) throws {
        if reply.isEmpty { throw GDBRemoteError.unsupported(request: command) }
        if reply.count == 3, reply[0] == UInt8(ascii: "E"), let code = hexValue(reply[1], reply[2]) {
            throw GDBRemoteError.errorReply(request: command, code: Int(code))
        }
    }

    // MARK: state

    /// `?`: why the target is stopped.
    public func haltReason() throws -> StopReply {
        try StopReply(parsing: try request("?"), request: "?")
    }

    private func readThreadList() throws -> [ThreadID] {
        var list: [ThreadID] = []
        var command = "qfThreadInfo"
        while true {
            let reply = try request(command)
            guard let kind = reply.first else { throw GDBRemoteError.unsupported(request: command) }
            if kind == UInt8(ascii: "l") { break }
            guard kind == UInt8(ascii: "m") else { throw GDBRemoteError.badReply(request: command, reply: excerpt(reply)) }
            for item in String(decoding: reply.dropFirst(), as: UTF8.self).split(separator: ",") {
                guard let id = ThreadID(parsing: item) else { throw GDBRemoteError.badReply(request: command, reply: excerpt(reply)) }
                list.append(id)
            }
            guard list.count <= GDBRemoteClient.maxThreads else { throw GDBRemoteError.badReply(request: command, reply: "more than \(GDBRemoteClient.maxThreads) threads") }
            command = "qsThreadInfo"
        }
        guard !list.isEmpty else { throw GDBRemoteError.badReply(request: "qfThreadInfo", reply: "no threads") }
        return list
    }

    /// Reads one annex of the target description with `qXfer:features:read`,
    /// chunk by chunk (`m` = more follows, `l` = last).
    private func readFeature(_ annex: String) throws -> String {
        var text: [UInt8] = []
        let chunk = max(16, packetSize - GDBRemoteClient.commandOverhead)
        while true {
            let command = "qXfer:features:read:\(annex):\(String(text.count, radix: 16)),\(String(chunk, radix: 16))"
            let reply = try request(command)
            try throwIfError(reply, command)
            guard let kind = reply.first, kind == UInt8(ascii: "m") || kind == UInt8(ascii: "l") else {
                throw GDBRemoteError.badReply(request: command, reply: excerpt(reply))
            }
            text.append(contentsOf: reply.dropFirst())
            guard text.count <= GDBRemoteClient.maxXMLBytes else { throw GDBRemoteError.badTargetDescription("'\(annex)' larger than \(GDBRemoteClient.maxXMLBytes) bytes") }
            if kind == UInt8(ascii: "l") { break }
            if reply.count == 1 { throw GDBRemoteError.badReply(request: command, reply: "empty 'm' chunk") }
        }
        return String(decoding: text, as: UTF8.self)
    }

    // MARK: registers

    /// Makes `thread` the one later register packets act on (`Hg`).
    public func selectThread(_ thread: ThreadID) throws {
        if selectedThread == thread { return }
        let command = "Hg\(thread)"
        try expectOK(try request(command), command)
        selectedThread = thread
    }

    /// `g`: the selected thread's register block, in register-number order.
    /// Bytes the stub marks unavailable (`xx`) are nil.
    public func readRegisterBlock() throws -> [UInt8?] {
        let reply = try request("g")
        try throwIfError(reply, "g")
        return try GDBRemoteClient.decodeRegisterBlock(reply)
    }

    /// A `g` reply's bytes: two hex digits each, `xx` (unavailable) as nil.
    static func decodeRegisterBlock(_ reply: [UInt8]) throws -> [UInt8?] {
        guard reply.count % 2 == 0 else { throw GDBRemoteError.badReply(request: "g", reply: excerpt(reply)) }
        var block: [UInt8?] = []
        block.reserveCapacity(reply.count / 2)
        var i = 0
        while i < reply.count {
            if reply[i] == UInt8(ascii: "x") && reply[i + 1] == UInt8(ascii: "x") { block.append(nil) } else {
                guard let byte = hexValue(reply[i], reply[i + 1]) else { throw GDBRemoteError.badReply(request: "g", reply: excerpt(reply)) }
                block.append(byte)
            }
            i += 2
        }
        return block
    }

    /// `p n`: one register of the selected thread, in target byte order.
    public func readRegister(_ number: Int) throws -> [UInt8] {
        let command = "p\(String(number, radix: 16))"
        let reply = try request(command)
        try throwIfError(reply, command)
        guard let bytes = Hex.decode(reply) else { throw GDBRemoteError.badReply(request: command, reply: excerpt(reply)) }
        return bytes
    }

    /// `P n=value`: sets one register of the selected thread.
    public func writeRegister(_ number: Int, bytes: [UInt8]) throws {
        let command = "P\(String(number, radix: 16))=\(Hex.encode(bytes))"
        try expectOK(try request(command), command)
    }

    // MARK: memory

    /// `Qqemu.PhyMemMode`: whether m/M address guest-physical (true) or
    /// guest-virtual (false) memory. QEMU-specific.
    public func setPhysicalMemoryMode(_ physical: Bool) throws {
        if physicalMode == physical { return }
        let command = "Qqemu.PhyMemMode:\(physical ? 1 : 0)"
        try expectOK(try request(command), command)
        physicalMode = physical
    }

    /// The most bytes one `m` reply carries: its hex must fit in a packet
    /// (QEMU: `PacketSize=0x1000`, `m0,1000` answered E22; 2 KiB works).
    public var maxReadChunk: Int { max(1, (packetSize - GDBRemoteClient.commandOverhead) / 2) }

    /// Reads `count` bytes at `address` (physical or virtual: see
    /// `setPhysicalMemoryMode`), in chunks that fit the stub's packets.
    public func readMemory(at address: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, UInt64(count) <= UInt64.max - address else {
            throw GDBRemoteError.badReply(request: "m", reply: "range overflows")
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let length = min(maxReadChunk, count - out.count)
            let command = "m\(String(address + UInt64(out.count), radix: 16)),\(String(length, radix: 16))"
            let reply = try request(command)
            try throwIfError(reply, command)
            // A stub may return fewer bytes than asked, never more.
            guard let bytes = Hex.decode(reply), !bytes.isEmpty, bytes.count <= length else {
                throw GDBRemoteError.badReply(request: command, reply: excerpt(reply))
            }
            out.append(contentsOf: bytes)
        }
        return out
    }

    /// Writes `bytes` at `address` with `M`, in chunks that fit the stub's packets.
    public func writeMemory(at address: UInt64, bytes: [UInt8]) throws {
        guard UInt64(bytes.count) <= UInt64.max - address else {
            throw GDBRemoteError.badReply(request: "M", reply: "range overflows")
        }
        var done = 0
        while done < bytes.count {
            let length = min(maxReadChunk, bytes.count - done)
            let command = "M\(String(address + UInt64(done), radix: 16)),\(String(length, radix: 16)):" + Hex.encode(bytes[done..<done + length])
            try expectOK(try request(command), "M\(String(address + UInt64(done), radix: 16)),\(String(length, radix: 16))")
            done += length
        }
    }

    // MARK: breakpoints

    /// `Z0,addr,1`: a software breakpoint at guest-virtual `address`.
    public func insertBreakpoint(at address: UInt64) throws {
        let command = "Z\(GDBRemoteClient.softwareBreakpoint),\(String(address, radix: 16)),\(GDBRemoteClient.breakpointKind)"
        try expectOK(try request(command), command)
    }

    /// `z0,addr,1`: removes it.
    public func removeBreakpoint(at address: UInt64) throws {
        let command = "z\(GDBRemoteClient.softwareBreakpoint),\(String(address, radix: 16)),\(GDBRemoteClient.breakpointKind)"
        try expectOK(try request(command), command)
    }

    // MARK: running

    /// Resumes every thread (`vCont;c`, or `c`). The stub answers only when
    /// the target stops: collect that with `waitForStop(timeout:)`.
    public func resume() throws {
        try run(useVCont ? "vCont;c" : "c")
    }

    /// Executes one instruction on `thread` only (`vCont;s:THREAD`); the other
    /// threads stay stopped. QEMU steps without taking interrupts and over a
    /// breakpoint at the current pc. Collect the stop with `waitForStop`.
    public func step(_ thread: ThreadID) throws {
        guard useVCont else { throw GDBRemoteError.unsupported(request: "vCont;s (single-step of one thread)") }
        try run("vCont;s:\(thread)")
    }

    /// Sends a run command (`c`, `vCont;...`); the stub answers when it stops.
    private func run(_ command: String) throws {
        guard isAttached else { throw detachedError }
        guard !isRunning else { return }
        unsolicitedStops.removeAll()
        // The stub picks its own current thread when it stops next.
        selectedThread = nil
        do {
            try lock.withLock { _ in
                try channel.send(Array(command.utf8), deadline: Deadline(seconds: timeout), what: "the acknowledgment of '\(command)'")
                running = true
            }
        } catch let error as GDBRemoteError {
            breakIfFatal(error)
            throw error
        }
    }

    /// Waits up to `timeout` seconds for the running target to stop; nil if it
    /// is still running then. `O` console packets are collected on the way.
    public func waitForStop(timeout seconds: Double) throws -> StopReply? {
        guard isAttached else { throw detachedError }
        guard isRunning else { throw GDBRemoteError.wrongState("waitForStop: the target is not running") }
        let deadline = Deadline(seconds: seconds)
        while true {
            let packet: [UInt8]
            do {
                packet = try channel.receive(deadline: deadline, what: "a stop reply")
            } catch GDBRemoteError.timeout {
                return nil
            } catch let error as GDBRemoteError {
                lock.withLock { _ in running = false }
                breakIfFatal(error)
                throw error
            }
            if packet.first == UInt8(ascii: "O"), packet.count > 1, let text = Hex.decode(packet.dropFirst()) {
                consoleOutput.append(contentsOf: text)
                if consoleOutput.count > GDBRemoteClient.maxConsoleOutput { consoleOutput.removeFirst(consoleOutput.count - GDBRemoteClient.maxConsoleOutput) }
                // Console output does not extend the wait.
                if deadline.hasPassed { return nil }
                continue
            }
            let stop = try StopReply(parsing: packet, request: "continue")
            lock.withLock { _ in running = false }
            if case .signal = stop {} else { isAttached = false; channel.connection.close() }
            return stop
        }
    }

    /// Sends the interrupt byte if the target is running; the stop reply it
    /// causes is then returned by `waitForStop`. Safe from another thread.
    public func interrupt() throws {
        try lock.withLock { _ in
            guard running, isAttached else { return }
            try channel.sendInterrupt(deadline: Deadline(seconds: timeout))
        }
    }

    /// Interrupts a running target and waits for it to stop.
    @discardableResult
    public func stop() throws -> StopReply? {
        guard isRunning else { return nil }
        try interrupt()
        guard let stop = try waitForStop(timeout: timeout) else {
            abandon()
            throw GDBRemoteError.timeout(waitingFor: "the stop reply after an interrupt", seconds: timeout)
        }
        return stop
    }

    // MARK: monitor

    /// `qRcmd`: runs a monitor command (QEMU: its HMP monitor, e.g.
    /// `info registers`) and returns its output (the `O` packets, joined).
    public func monitor(_ command: String) throws -> String {
        let text = "qRcmd,\(Hex.encode(command.utf8))"
        var output: [UInt8] = []
        var reply = try request(text)
        let deadline = Deadline(seconds: timeout)
        while true {
            if reply == Array("OK".utf8) { break }
            try throwIfError(reply, "qRcmd,\(command)")
            guard reply.first == UInt8(ascii: "O"), let bytes = Hex.decode(reply.dropFirst()) else {
                throw GDBRemoteError.badReply(request: "qRcmd,\(command)", reply: excerpt(reply))
            }
            output.append(contentsOf: bytes)
            guard output.count <= GDBRemoteClient.maxMonitorOutput else { throw GDBRemoteError.packetTooLarge(limit: GDBRemoteClient.maxMonitorOutput) }
            do {
                let what = "the output of 'monitor \(command)'"
                try deadline.check(waitingFor: what)
                reply = try channel.receive(deadline: deadline, what: what)
            } catch let error as GDBRemoteError {
                breakIfFatal(error)
                throw error
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: leaving

    /// `D;PID` after multiprocess+ (QEMU answers a plain `D` with E22 then), else `D`.
    private var detachCommand: String {
        guard multiprocess else { return "D" }
        let pid = threads.first?.process ?? 1
        return "D;\(String(pid, radix: 16))"
    }

    /// Resumes the guest and disconnects (stopping it first if running, so the
    /// stub is idle when it reads `D`). Idempotent.
    public func detach() throws {
        guard isAttached else { return }
        defer { if isAttached { abandon() } }
        if isRunning { try stop() }
        let command = detachCommand
        let reply = try request(command)
        isAttached = false
        channel.connection.close()
        try expectOK(reply, command)
    }

    /// Detaches if still attached (best effort), then closes the socket.
    public func close() {
        if isAttached { try? detach() }
        abandon()
        channel.connection.close()
    }
}
