import Glibc

extension SyscallRedirector {
    /// PTRACE_TRACEME (include/uapi/linux/ptrace.h): the caller asks to be traced.
    static let ptraceTraceMe: UInt64 = 0

    /// A call of class `.machine`: local when it is about the inspector's own
    /// processes, the guest for reads, the guest for changes with
    /// `--allow-writes`, EPERM otherwise. It never runs locally on anything else.
    func machine(_ spec: SyscallSpec, _ rule: MachineRule, _ request: SyscallRequest,
                 _ validate: () throws -> Void) throws -> SyscallReply {
        if isAboutInspector(rule.subject, request) { return .continueLocally }
        var callSpec = spec
        var callRequest = request
        let changes: Bool
        switch rule.effect {
        case .reads:
            changes = false
        case .changes:
            changes = true
        case .signals(let signal):
            changes = request.int32(signal) != 0
        case .syslog:
            let action = UInt64(UInt32(truncatingIfNeeded: request.arguments[0]))
            changes = !SyslogAction.reading.contains(action)
            if !SyslogAction.fillingBuffer.contains(action) {
                // The buffer is unused: nothing to copy, no host pointer for the guest.
                callSpec = SyscallSpec(spec.number, spec.name, [.value, .value, .value], handling: spec.handling)
                callRequest.arguments[1] = 0
            }
        case .notRedirected(let why):
            return refuse(spec, EPERM, why, once: true)
        }
        if changes && !policy.allowWrites {
            return refuse(spec, EPERM, "acts on the machine; refused without --allow-writes", once: true)
        }
        let reply = try generic(callSpec, callRequest, validate)
        // Generic marshalling lets a call run locally when no argument names a
        // guest object (a NULL path): a machine call never does.
        if reply == .continueLocally { return refuse(spec, EPERM, "no guest object named", once: true) }
        return reply
    }

    /// Whether the subject of a machine call is the inspector itself.
    func isAboutInspector(_ subject: MachineSubject, _ request: SyscallRequest) -> Bool {
        let family = InspectorFamily(root: inspectorRoot ?? InspectorFamily.threadGroup(of: request.pid) ?? request.pid,
                                     caller: request.pid)
        switch subject {
        case .machine:
            return false
        case .process(let argument, let negativeIsGroup):
            let pid = request.int32(argument)
            guard negativeIsGroup else { return pid == 0 || family.owns(pid) }
            // kill(2): 0 is the caller's group, -1 every process, -N group N.
            if pid == 0 { return family.ownsGroup(family.callerGroup) }
            if pid == -1 || pid == Int32.min { return false }
            return pid < 0 ? family.ownsGroup(-pid) : family.owns(pid)
        case .thread(let argument):
            return family.owns(request.int32(argument))
        case .pidfd(let argument):
            let fd = request.int32(argument)
            if table.entry(rawArgument: request.arguments[argument]) != nil { return false }
            return family.pidfdTarget(fd).map(family.owns) ?? false
        case .ptrace(let requestArgument, let pid):
            return request.arguments[requestArgument] == Self.ptraceTraceMe || family.owns(request.int32(pid))
        case .whichWho(let which, let who, let processWhich, let groupWhich):
            let id = request.int32(who)
            switch UInt64(UInt32(truncatingIfNeeded: request.arguments[which])) {
            case processWhich: return id == 0 || family.owns(id)
            case groupWhich: return family.ownsGroup(id == 0 ? family.callerGroup : id)
            default: return false
            }
        }
    }
}
