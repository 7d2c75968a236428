extension SyscallSpecTable {
    /// `struct siginfo`, SI_MAX_SIZE in include/uapi/asm-generic/siginfo.h.
    static let siginfoSize = 128
    /// `struct sched_param`: one int (include/uapi/linux/sched/types.h).
    static let schedParamSize = 4
    /// `struct __kernel_timespec` and `struct __kernel_old_timeval` (two
    /// 64-bit fields), `struct timezone` (two ints): include/uapi/linux/time.h
    /// and time_types.h.
    static let timespecSize = 16, timevalSize = 16, timezoneSize = 8
    /// PRIO_PROCESS and PRIO_PGRP (include/uapi/linux/resource.h).
    static let priorityProcess: UInt64 = 0, priorityGroup: UInt64 = 1
    /// IOPRIO_WHO_PROCESS and IOPRIO_WHO_PGRP (include/uapi/linux/ioprio.h).
    static let ioPriorityProcess: UInt64 = 1, ioPriorityGroup: UInt64 = 2

    private static func machine(_ number: Int, _ name: String, _ arguments: [ArgumentRole],
                                _ subject: MachineSubject, _ effect: MachineEffect, forceGuest: Bool = false) -> SyscallSpec {
        SyscallSpec(number, name, arguments, handling: .machine(MachineRule(subject, effect)), forceGuest: forceGuest)
    }

    private static let values2: [ArgumentRole] = [.value, .value]
    private static let values3: [ArgumentRole] = [.value, .value, .value]
    private static let priority = MachineSubject.whichWho(which: 0, who: 1, processWhich: priorityProcess, groupWhich: priorityGroup)
    private static let ioPriority = MachineSubject.whichWho(which: 0, who: 1, processWhich: ioPriorityProcess, groupWhich: ioPriorityGroup)

    /// Calls of class `.machine`: their subject and effect, and the roles
    /// that marshal them into the guest.
    static let machine: [SyscallSpec] = [
        // Signals to other processes.
        machine(N.kill, "kill", values2, .process(argument: 0, negativeIsGroup: true), .signals(signal: 1)),
        machine(N.tkill, "tkill", values2, .thread(argument: 0), .signals(signal: 1)),
        machine(N.tgkill, "tgkill", values3, .process(argument: 0), .signals(signal: 2)),
        machine(N.rtSigqueueinfo, "rt_sigqueueinfo", [.value, .value, .inStruct(size: siginfoSize)],
                .process(argument: 0), .signals(signal: 1)),
        machine(N.rtTgsigqueueinfo, "rt_tgsigqueueinfo", [.value, .value, .value, .inStruct(size: siginfoSize)],
                .process(argument: 0), .signals(signal: 2)),
        // psmisc's killall opens /proc/PID as its pidfd: on a guest fd it names a
        // guest process; on a local pidfd the call has no guest object (EPERM).
        machine(N.pidfdSendSignal, "pidfd_send_signal", [.fd, .value, .inStruct(size: siginfoSize), .value],
                .pidfd(argument: 0), .signals(signal: 1)),
        machine(N.pidfdOpen, "pidfd_open", [], .process(argument: 0),
                .notRedirected("guest pidfds are not redirected; kill(2) is")),
        machine(N.pidfdGetfd, "pidfd_getfd", [], .pidfd(argument: 0), .notRedirected("takes another process's fd")),
        // Other processes' memory, tracing and resources.
        machine(N.ptrace, "ptrace", [], .ptrace(request: 0, pid: 1), .notRedirected("traces another process")),
        machine(N.processVmReadv, "process_vm_readv", [], .process(argument: 0), .notRedirected("another process's memory")),
        machine(N.processVmWritev, "process_vm_writev", [], .process(argument: 0), .notRedirected("another process's memory")),
        machine(N.kcmp, "kcmp", [], .process(argument: 0), .notRedirected("compares other processes' kernel objects")),
        machine(N.migratePages, "migrate_pages", [], .process(argument: 0), .notRedirected("another process's memory placement")),
        machine(N.movePages, "move_pages", [], .process(argument: 0), .notRedirected("another process's memory placement")),
        machine(N.processMadvise, "process_madvise", [], .pidfd(argument: 0), .notRedirected("another process's memory")),
        machine(N.processMrelease, "process_mrelease", [], .pidfd(argument: 0), .notRedirected("another process's memory")),
        machine(N.perfEventOpen, "perf_event_open", [], .process(argument: 1), .notRedirected("observes other processes or CPUs")),
        machine(N.prlimit64, "prlimit64", [], .process(argument: 0), .notRedirected("another process's limits")),
        // Scheduling of other processes.
        machine(N.schedSetaffinity, "sched_setaffinity", [.value, .value, .inBuffer(length: 1)], .process(argument: 0), .changes),
        machine(N.schedGetaffinity, "sched_getaffinity", [.value, .value, .outBuffer(length: 1)], .process(argument: 0), .reads),
        machine(N.schedSetparam, "sched_setparam", [.value, .inStruct(size: schedParamSize)], .process(argument: 0), .changes),
        machine(N.schedGetparam, "sched_getparam", [.value, .outStruct(size: schedParamSize)], .process(argument: 0), .reads),
        machine(N.schedSetscheduler, "sched_setscheduler", [.value, .value, .inStruct(size: schedParamSize)],
                .process(argument: 0), .changes),
        machine(N.schedGetscheduler, "sched_getscheduler", [.value], .process(argument: 0), .reads),
        machine(N.schedRrGetInterval, "sched_rr_get_interval", [.value, .outStruct(size: timespecSize)], .process(argument: 0), .reads),
        machine(N.schedSetattr, "sched_setattr", [], .process(argument: 0), .notRedirected("struct sched_attr has a caller-chosen size")),
        machine(N.schedGetattr, "sched_getattr", [], .process(argument: 0), .notRedirected("struct sched_attr has a caller-chosen size")),
        machine(N.getpriority, "getpriority", values2, priority, .reads),
        machine(N.setpriority, "setpriority", values3, priority, .changes),
        machine(N.ioprioGet, "ioprio_get", values2, ioPriority, .reads),
        machine(N.ioprioSet, "ioprio_set", values3, ioPriority, .changes),
        machine(N.getpgid, "getpgid", [.value], .process(argument: 0), .reads),
        machine(N.getsid, "getsid", [.value], .process(argument: 0), .reads),
        // The machine itself.
        machine(N.sethostname, "sethostname", [.inBuffer(length: 1), .value], .machine, .changes),
        machine(N.setdomainname, "setdomainname", [.inBuffer(length: 1), .value], .machine, .changes),
        machine(N.settimeofday, "settimeofday", [.inStruct(size: timevalSize), .inStruct(size: timezoneSize)], .machine, .changes),
        machine(N.clockSettime, "clock_settime", [.value, .inStruct(size: timespecSize)], .machine, .changes),
        machine(N.umount2, "umount2", [.path, .value], .machine, .changes, forceGuest: true),
        machine(N.swapon, "swapon", [.path, .value], .machine, .changes, forceGuest: true),
        machine(N.swapoff, "swapoff", [.path], .machine, .changes, forceGuest: true),
        machine(N.deleteModule, "delete_module", [.string, .value], .machine, .changes),
        machine(N.syslog, "syslog", [.value, .outBuffer(length: 2), .value], .machine, .syslog),
        machine(N.sync, "sync", [], .machine, .changes),
    ]
}
