import Synchronization

/// Reading and changing the stopped target: its threads, registers,
/// memory and breakpoints.
extension GDBRemoteClient {
    // MARK: state

    /// `?`: why the target is stopped.
    public func haltReason() throws -> StopReply {
        try StopReply(parsing: try request("?"), request: "?")
    }

    func readThreadList() throws -> [ThreadID] {
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
    func readFeature(_ annex: String) throws -> String {
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
}
