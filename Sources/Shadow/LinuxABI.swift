/// The x86-64 Linux user ABI facts the shadow process is built from, each
/// named once with its source. They are the stable ABI, not kernel internals:
/// no symbols or structure layouts of a particular kernel are used.
public enum LinuxABI {
    /// System call numbers, arch/x86/entry/syscalls/syscall_64.tbl.
    public enum Syscall {
        public static let read = 0
        public static let close = 3
        public static let mmap = 9
        public static let munmap = 11
        public static let rtSigprocmask = 14
        public static let nanosleep = 35
        public static let getpid = 39
        public static let clone = 56
        public static let exit = 60
        public static let wait4 = 61
        public static let uname = 63
        public static let setsid = 112
        public static let prctl = 157
        public static let sched_setaffinity = 203
        public static let getdents64 = 217
        public static let openat = 257
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
    /// prctl option that sets the calling thread's comm (include/uapi/linux/prctl.h).
    public static let prSetName: UInt64 = 15
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
    /// O_RDONLY and O_DIRECTORY (include/uapi/asm-generic/fcntl.h).
    public static let oReadOnly: UInt64 = 0, oDirectory: UInt64 = 0o200000

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
