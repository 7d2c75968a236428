/// Sizes of the structs redirected calls fill, x86_64 (inspector and guest
/// share the ABI, so they are copied as raw bytes).
public enum KernelStructSize {
    /// `struct stat`, arch/x86/include/uapi/asm/stat.h (x86_64).
    public static let stat = 144
    /// `struct statx`, include/uapi/linux/stat.h.
    public static let statx = 256
    /// `struct statfs`, include/uapi/asm-generic/statfs.h (64-bit).
    public static let statfs = 120
    /// `struct new_utsname`, include/uapi/linux/utsname.h: 6 fields of 65 bytes.
    public static let utsname = 390
    /// `struct sysinfo`, include/uapi/linux/sysinfo.h (64-bit).
    public static let sysinfo = 112
    /// `struct iovec`, include/uapi/linux/uio.h (64-bit).
    public static let iovec = 16
}

/// What one system-call argument is, for marshalling into the guest.
public enum ArgumentRole: Equatable, Sendable {
    /// Passed unchanged.
    case value
    /// A file descriptor: a guest fd's local placeholder is rewritten to the guest fd.
    case fd
    /// A directory fd for a path argument: AT_FDCWD or a guest fd.
    case dirfd
    /// A NUL-terminated path the inspector passes in (at most PATH_MAX bytes).
    case path
    /// An input buffer whose length is argument `length`.
    case inBuffer(length: Int)
    /// An output buffer of argument `length` bytes; the call returns how many it filled.
    case outBuffer(length: Int)
    /// A NUL-terminated input string that is not a path (an xattr name).
    case string
    /// Like `outBuffer`, but a length of 0 asks for the size needed (the
    /// result is then any size and nothing is copied): getxattr, listxattr.
    case outBufferOrSizeQuery(length: Int)
    /// A fixed-size output struct, filled when the call returns 0.
    case outStruct(size: Int)
    /// An array of argument `count` iovecs to read into (readv).
    case iovecOut(count: Int)
    /// A fixed-size input struct; a NULL pointer stays NULL.
    case inStruct(size: Int)
}

/// How the supervisor treats a call it knows.
public enum SyscallHandling: Equatable, Sendable {
    /// Marshalled generically from the argument roles.
    case generic
    /// Needs supervisor state (fd table, cwd, flags checks): open/openat,
    /// close, close_range, dup*, fcntl, chdir, fchdir, getcwd, socket.
    case special
    /// Known, but not redirected: on a guest fd or path it is answered EROFS
    /// (if `writes` and writes are not allowed) or ENOSYS.
    case unsupported(writes: Bool)
    /// Acts on the machine or another process (class `.machine`).
    case machine(MachineRule)
}

/// When the BPF filter hands a call to the supervisor.
public enum TrapRule: Equatable, Sendable {
    /// Always (path-taking calls, uname, sysinfo, cwd calls).
    case always
    /// Only if one of these fd arguments lies in the reserved guest-fd range.
    case fdInRange([Int])
    /// Only if argument `argument` (low 32 bits) equals `value`.
    case argumentEquals(argument: Int, value: UInt32)
    /// If one of the fd arguments lies in the guest-fd range, or argument
    /// `argument` (low 32 bits) lies in `lower...upper` (ioctl: the socket
    /// requests that ask about the machine's network interfaces).
    case fdInRangeOrArgumentWithin(fds: [Int], argument: Int, lower: UInt32, upper: UInt32)
}

/// Everything the supervisor knows about one system call. A class: the
/// supervisor hands one around for every call, and a reference costs one
/// retain where a struct of arrays costs one per array.
public final class SyscallSpec: Sendable {
    public let number: Int
    public let name: String
    public let arguments: [ArgumentRole]
    public let handling: SyscallHandling
    public let trap: TrapRule
    /// Goes to the guest whatever its path says (statfs, so `df` sees the guest's mounts).
    public let forceGuest: Bool
    /// Index of the path argument, if any.
    public let pathArgument: Int?
    /// Index of the directory-fd argument, if any.
    public let dirfdArgument: Int?
    /// Indices of plain fd arguments.
    public let fdArguments: [Int]
    /// Indices of fd and directory-fd arguments, in order. These four are
    /// kept, not computed: the supervisor asks them for every call.
    public let anyFdArguments: [Int]

    public init(_ number: Int, _ name: String, _ arguments: [ArgumentRole],
                handling: SyscallHandling = .generic, trap: TrapRule? = nil, forceGuest: Bool = false) {
        self.number = number
        self.name = name
        self.arguments = arguments
        self.handling = handling
        self.forceGuest = forceGuest
        pathArgument = arguments.firstIndex(of: .path)
        dirfdArgument = arguments.firstIndex(of: .dirfd)
        fdArguments = arguments.indices.filter { arguments[$0] == .fd }
        anyFdArguments = arguments.indices.filter { arguments[$0] == .fd || arguments[$0] == .dirfd }
        if case .machine = handling {
            // Who a machine call is about is decided by the supervisor.
            self.trap = .always
        } else if let trap {
            self.trap = trap
        } else if arguments.contains(.path) {
            self.trap = .always
        } else {
            self.trap = anyFdArguments.isEmpty ? .always : .fdInRange(anyFdArguments)
        }
    }
}
