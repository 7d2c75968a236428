/// The x86-64 Linux user ABI facts the shadow process is built from, each
/// named once with its source. They are the stable ABI, not kernel internals:
/// no symbols or structure layouts of a particular kernel are used.
public enum LinuxABI {
    /// System call numbers, arch/x86/entry/syscalls/syscall_64.tbl (common/64
    /// ABI): the ones S is built with and the ones the supervisor knows.
    /// Inspector and guest are both x86_64, so the same numbers go to the
    /// guest kernel.
    public enum Syscall {
        public static let read = 0
        public static let write = 1
        public static let open = 2
        public static let close = 3
        public static let stat = 4
        public static let fstat = 5
        public static let lstat = 6
        public static let poll = 7
        public static let lseek = 8
        public static let mmap = 9
        public static let munmap = 11
        public static let rtSigprocmask = 14
        public static let ioctl = 16
        public static let pread64 = 17
        public static let pwrite64 = 18
        public static let readv = 19
        public static let writev = 20
        public static let access = 21
        public static let dup = 32
        public static let dup2 = 33
        public static let nanosleep = 35
        public static let getpid = 39
        public static let sendfile = 40
        public static let socket = 41
        public static let sendto = 44
        public static let recvfrom = 45
        public static let sendmsg = 46
        public static let recvmsg = 47
        public static let bind = 49
        public static let getsockname = 51
        public static let setsockopt = 54
        public static let getsockopt = 55
        public static let clone = 56
        public static let exit = 60
        public static let wait4 = 61
        public static let kill = 62
        public static let uname = 63
        public static let fcntl = 72
        public static let flock = 73
        public static let fsync = 74
        public static let fdatasync = 75
        public static let truncate = 76
        public static let ftruncate = 77
        public static let getdents = 78
        public static let getcwd = 79
        public static let chdir = 80
        public static let fchdir = 81
        public static let rename = 82
        public static let mkdir = 83
        public static let rmdir = 84
        public static let creat = 85
        public static let link = 86
        public static let unlink = 87
        public static let symlink = 88
        public static let readlink = 89
        public static let chmod = 90
        public static let fchmod = 91
        public static let chown = 92
        public static let fchown = 93
        public static let lchown = 94
        public static let sysinfo = 99
        public static let ptrace = 101
        public static let getuid = 102
        public static let syslog = 103
        public static let getppid = 110
        public static let setsid = 112
        public static let setresuid = 117
        public static let getpgid = 121
        public static let setfsuid = 122
        public static let getsid = 124
        public static let rtSigqueueinfo = 129
        public static let utime = 132
        public static let mknod = 133
        public static let statfs = 137
        public static let fstatfs = 138
        public static let getpriority = 140
        public static let setpriority = 141
        public static let schedSetparam = 142
        public static let schedGetparam = 143
        public static let schedSetscheduler = 144
        public static let schedGetscheduler = 145
        public static let schedRrGetInterval = 148
        public static let prctl = 157
        public static let sync = 162
        public static let settimeofday = 164
        public static let umount2 = 166
        public static let swapon = 167
        public static let swapoff = 168
        public static let sethostname = 170
        public static let setdomainname = 171
        public static let ioperm = 173
        public static let deleteModule = 176
        public static let gettid = 186
        public static let readahead = 187
        public static let setxattr = 188
        public static let lsetxattr = 189
        public static let fsetxattr = 190
        public static let getxattr = 191
        public static let lgetxattr = 192
        public static let fgetxattr = 193
        public static let listxattr = 194
        public static let llistxattr = 195
        public static let flistxattr = 196
        public static let removexattr = 197
        public static let lremovexattr = 198
        public static let fremovexattr = 199
        public static let tkill = 200
        public static let schedSetaffinity = 203
        public static let schedGetaffinity = 204
        public static let getdents64 = 217
        public static let fadvise64 = 221
        public static let clockSettime = 227
        public static let epollCtl = 233
        public static let exitGroup = 231
        public static let tgkill = 234
        public static let utimes = 235
        public static let ioprioSet = 251
        public static let ioprioGet = 252
        public static let inotifyAddWatch = 254
        public static let migratePages = 256
        public static let openat = 257
        public static let mkdirat = 258
        public static let mknodat = 259
        public static let fchownat = 260
        public static let futimesat = 261
        public static let newfstatat = 262
        public static let unlinkat = 263
        public static let renameat = 264
        public static let linkat = 265
        public static let symlinkat = 266
        public static let readlinkat = 267
        public static let fchmodat = 268
        public static let faccessat = 269
        public static let splice = 275
        public static let tee = 276
        public static let syncFileRange = 277
        public static let movePages = 279
        public static let utimensat = 280
        public static let fallocate = 285
        public static let dup3 = 292
        public static let preadv = 295
        public static let pwritev = 296
        public static let rtTgsigqueueinfo = 297
        public static let perfEventOpen = 298
        public static let prlimit64 = 302
        public static let nameToHandleAt = 303
        public static let syncfs = 306
        public static let processVmReadv = 310
        public static let processVmWritev = 311
        public static let kcmp = 312
        public static let schedSetattr = 314
        public static let schedGetattr = 315
        public static let renameat2 = 316
        public static let memfdCreate = 319
        public static let copyFileRange = 326
        public static let preadv2 = 327
        public static let pwritev2 = 328
        public static let statx = 332
        public static let pidfdSendSignal = 424
        public static let pidfdOpen = 434
        public static let closeRange = 436
        public static let openat2 = 437
        public static let pidfdGetfd = 438
        public static let faccessat2 = 439
        public static let processMadvise = 440
        public static let processMrelease = 448

        /// Bit set in x32-ABI system call numbers (syscall_64.tbl, `__X32_SYSCALL_BIT`
        /// in arch/x86/include/uapi/asm/unistd.h); the filter refuses them.
        public static let x32Bit: UInt32 = 0x4000_0000
    }

    /// mmap(2) protection and flags, include/uapi/asm-generic/mman-common.h
    /// and mman.h.
    public static let protRead: UInt64 = 0x1, protWrite: UInt64 = 0x2, protExec: UInt64 = 0x4
    public static let mapPrivate: UInt64 = 0x02, mapAnonymous: UInt64 = 0x20
    /// MAP_POPULATE: fault the pages in now, so they are present when written
    /// from outside (include/uapi/asm-generic/mman-common.h).
    public static let mapPopulate: UInt64 = 0x8000

    /// SIGCHLD (include/uapi/asm-generic/signal.h); as clone's low byte it is
    /// the signal the parent gets when the child exits (clone(2)).
    public static let sigchld: UInt64 = 17
    /// Bytes of a CPU mask as sched_setaffinity(2) takes it: glibc's
    /// cpu_set_t, 1024 CPUs (CPU_SETSIZE, sched.h).
    public static let cpuSetBytes = 128

    /// A CPU mask holding `cpu` alone; nil outside the mask's 1024 CPUs.
    public static func cpuSet(only cpu: Int) -> [UInt8]? {
        guard cpu >= 0, cpu < cpuSetBytes * 8 else { return nil }
        var mask = [UInt8](repeating: 0, count: cpuSetBytes)
        mask[cpu / 8] = 1 << UInt8(cpu % 8)
        return mask
    }

    /// kcmp(2)'s KCMP_FILE: compare two tasks' files (include/uapi/linux/kcmp.h).
    public static let kcmpFile: UInt64 = 0
    /// prctl option that sets the calling thread's comm (include/uapi/linux/prctl.h).
    public static let prSetName: UInt64 = 15
    /// prctl(PR_SET_MM, PR_SET_MM_ARG_START / PR_SET_MM_ARG_END, address):
    /// where /proc/PID/cmdline is read from (include/uapi/linux/prctl.h;
    /// needs CAP_SYS_RESOURCE).
    public static let prSetMM: UInt64 = 35
    public static let prSetMMArgStart: UInt64 = 8
    public static let prSetMMArgEnd: UInt64 = 9
    /// __WCLONE: wait4 also reaps children whose exit signal is not SIGCHLD
    /// (include/uapi/linux/wait.h, wait4(2)).
    public static let waitClone: UInt64 = 0x8000_0000
    /// SIG_BLOCK for rt_sigprocmask (include/uapi/asm-generic/signal-defs.h).
    public static let sigBlock: UInt64 = 0
    /// The kernel's sigset_t size on x86-64: 64 signals, 8 bytes
    /// (rt_sigprocmask(2) requires exactly this).
    public static let sigsetSize: UInt64 = 8
    /// AT_FDCWD for openat (include/uapi/linux/fcntl.h).
    public static let atFDCWD: Int64 = -100
    /// O_RDONLY, O_DIRECTORY, O_CLOEXEC and O_PATH (include/uapi/asm-generic/fcntl.h).
    public static let oReadOnly: UInt64 = 0, oDirectory: UInt64 = 0o200000, oCloexec: UInt64 = 0o2000000, oPath: UInt64 = 0o10000000
    /// AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH (the dirfd
    /// itself) and statx's AT_STATX_SYNC_TYPE bits (include/uapi/linux/fcntl.h).
    public static let atSymlinkNoFollow: UInt64 = 0x100, atNoAutomount: UInt64 = 0x800, atEmptyPath: UInt64 = 0x1000,
                      atStatxSyncType: UInt64 = 0x6000

    /// A raw system call result in -4095...-1 is -errno (the x86-64 syscall
    /// convention; glibc's INTERNAL_SYSCALL_ERROR_P uses the same bound).
    public static let maximumErrno: Int64 = 4095

    /// True when `rax` encodes an error.
    public static func isError(_ rax: Int64) -> Bool { rax < 0 && rax >= -maximumErrno }
}

/// x86-64 facts about `syscall` and privilege, each with its source.
enum X86 {
    /// Length of the `syscall` instruction (0F 05); the kernel returns to the
    /// next instruction (Intel SDM Vol. 2B, SYSCALL).
    static let syscallLength: UInt64 = 2
    /// The requested privilege level of a selector: its low two bits (SDM
    /// Vol. 3A §3.4.2); 3 is user mode.
    static let userRPL: UInt64 = 3
    /// Page size used for regions (4 KiB, SDM Vol. 3A §4.5).
    static let pageSize: UInt64 = 4096
}
