import Guest

/// How a session got its S.
public enum ShadowOrigin: Sendable {
    /// Found through the state file and re-validated.
    case reused
    /// Built now; `staleReason` says why a saved S was not reused (nil: none was saved).
    case built(BootstrapReport, staleReason: String?)
}

/// Connects shadow context to a target: finds S through the state file and
/// re-validates it (its root still maps the region present and user, the
/// cookie and stub match, and it answers getpid with its pid at its trap
/// point), or builds a new S and saves it.
public final class ShadowSession {
    public let executor: ShadowExecutor
    public let origin: ShadowOrigin
    /// Time from the start of `init` to S ready (validated or built).
    public let readyAfter: Duration

    /// The guest should be stopped (a GDB stub stops it on connect) or running; it is left as the executor needs.
    public init(target: Target, key: String, configuration: ShadowConfiguration = ShadowConfiguration(),
                stateDirectory: String? = nil) throws {
        let clock = ContinuousClock()
        let start = clock.now
        let file = ShadowStateFile(key: key, directory: stateDirectory)
        var staleReason: String? = nil
        do {
            if let saved = try file.load() {
                try target.halt()
                let executor = try ShadowSession.revalidate(saved, target: target, timeout: configuration.callTimeout,
                                                            idleTimeout: configuration.idleTimeout)
                self.executor = executor
                origin = .reused
                readyAfter = clock.now - start
                return
            }
        } catch let error as ShadowError {
            staleReason = error.description
            file.remove()
        }
        try target.halt()
        let (shadow, report) = try ShadowBootstrap(target: target, configuration: configuration).build()
        try file.save(shadow)
        executor = try ShadowExecutor(target: target, shadow: shadow, guestRunning: true, timeout: configuration.callTimeout,
                                      idleTimeout: configuration.idleTimeout)
        origin = .built(report, staleReason: staleReason)
        readyAfter = clock.now - start
    }

    /// Ends the S saved for `key`, if there is one and it is still S (it is
    /// re-validated against the guest first; nothing in guest memory is
    /// trusted to find it), and removes the state file. Returns its pid, or
    /// nil when there was none or the saved one was stale.
    public static func endShadow(target: Target, key: String, stateDirectory: String? = nil,
                                 timeout: Duration = .seconds(10)) throws -> Int64? {
        let file = ShadowStateFile(key: key, directory: stateDirectory)
        guard let saved = try file.load() else { return nil }
        defer { file.remove() }
        try target.halt()
        let executor: ShadowExecutor
        do {
            executor = try revalidate(saved, target: target, timeout: timeout)
        } catch is ShadowError {
            try? target.resumeWithoutWaiting()
            return nil
        }
        try executor.endShadow()
        return saved.pid
    }

    /// Checks a saved S against the guest (stopped) and returns an executor for it.
    static func revalidate(_ shadow: ShadowProcess, target: Target, timeout: Duration,
                           idleTimeout: Duration? = ShadowConfiguration.defaultIdleTimeout) throws -> ShadowExecutor {
        let view = GuestView(memory: target, context: shadow.paging)
        let header: [UInt8]
        do {
            let permissions = try view.translate(shadow.regionBase).permissions
            guard permissions.present, permissions.user, permissions.writable else {
                throw ShadowError.stale(pid: shadow.pid, reason: "its root no longer maps the region writable for user mode (\(permissions))")
            }
            header = try view.read(virtual: shadow.regionBase, count: ShadowStub.headerEnd)
        } catch let error as ShadowError {
            throw error
        } catch {
            throw ShadowError.stale(pid: shadow.pid, reason: "its region is not mapped any more (\(error))")
        }
        let stub = try ShadowStub(regionLength: shadow.regionLength, sleepNanoseconds: shadow.sleepNanoseconds)
        guard Array(header[ShadowStub.magicOffset ..< ShadowStub.magicOffset + 8]) == ShadowStub.magic,
              Array(header[ShadowStub.cookieOffset ..< ShadowStub.cookieOffset + ShadowStub.cookieLength]) == shadow.cookie else {
            throw ShadowError.stale(pid: shadow.pid, reason: "the cookie in its region does not match")
        }
        guard Array(header[0 ..< stub.code.count]) == stub.code else {
            throw ShadowError.stubModified(pid: shadow.pid, address: shadow.regionBase)
        }
        let executor = try ShadowExecutor(target: target, shadow: shadow, guestRunning: false, timeout: timeout,
                                          idleTimeout: idleTimeout)
        // Alive: S must come to its trap point and be the saved pid.
        let pid = try executor.syscall(LinuxABI.Syscall.getpid, [])
        guard pid == shadow.pid else {
            try? executor.close()
            throw ShadowError.stale(pid: shadow.pid, reason: "the process at the trap point is pid \(pid)")
        }
        return executor
    }
}
