import Synchronization

/// Running and stopping the target, the monitor side channel, and leaving.
extension GDBRemoteClient {
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
    func run(_ command: String) throws {
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
    var detachCommand: String {
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
