import CCapstone
import Glibc

/// Capstone, loaded with dlopen(3) the first time a `Disassembler` is made.
///
/// Linking libcapstone.so.4 costs about 3 MiB of resident memory at process
/// start (the dynamic loader relocates its tables for every architecture),
/// yet swvmm only disassembles after a failure or with --trace-exits. So the
/// executable has no DT_NEEDED on it; the header still gives the types.
struct CapstoneLibrary {
    /// The runtime name Debian's libcapstone4 package installs (capstone 4.x ABI).
    static let sonameV4 = "libcapstone.so.4"

    typealias Open = @convention(c) (cs_arch, cs_mode, UnsafeMutablePointer<csh>?) -> cs_err
    typealias Close = @convention(c) (UnsafeMutablePointer<csh>?) -> cs_err
    typealias Disasm = @convention(c) (csh, UnsafePointer<UInt8>?, Int, UInt64, Int,
                                       UnsafeMutablePointer<UnsafeMutablePointer<cs_insn>?>?) -> Int
    typealias DisasmIter = @convention(c) (csh, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<Int>?,
                                           UnsafeMutablePointer<UInt64>?, UnsafeMutablePointer<cs_insn>?) -> Bool
    typealias Malloc = @convention(c) (csh) -> UnsafeMutablePointer<cs_insn>?
    typealias Free = @convention(c) (UnsafeMutablePointer<cs_insn>?, Int) -> Void
    typealias StrError = @convention(c) (cs_err) -> UnsafePointer<CChar>?

    let open: Open
    let close: Close
    let disasm: Disasm
    let disasmIter: DisasmIter
    let malloc: Malloc
    let free: Free
    let strerror: StrError

    /// The library, loaded once (a global's initialiser runs exactly once,
    /// thread-safely); the error if it could not be.
    static let shared: Result<CapstoneLibrary, DisassemblerError> = Result { try CapstoneLibrary(soname: sonameV4) }
        .mapError { $0 as? DisassemblerError ?? .libraryUnavailable(library: sonameV4, reason: "\($0)") }

    /// dlopen(3)s `soname` and resolves every function swvmm calls. The
    /// handle is never closed: the functions stay in use for the process's life.
    init(soname: String) throws {
        guard let handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else {
            throw DisassemblerError.libraryUnavailable(library: soname, reason: Self.lastError())
        }
        func symbol<F>(_ name: String, as type: F.Type) throws -> F {
            guard let address = dlsym(handle, name) else {
                throw DisassemblerError.libraryUnavailable(library: soname, reason: Self.lastError())
            }
            return unsafeBitCast(address, to: type)
        }
        open = try symbol("cs_open", as: Open.self)
        close = try symbol("cs_close", as: Close.self)
        disasm = try symbol("cs_disasm", as: Disasm.self)
        disasmIter = try symbol("cs_disasm_iter", as: DisasmIter.self)
        malloc = try symbol("cs_malloc", as: Malloc.self)
        free = try symbol("cs_free", as: Free.self)
        strerror = try symbol("cs_strerror", as: StrError.self)
    }

    /// dlerror(3)'s message, which names the file and the reason.
    private static func lastError() -> String {
        guard let message = dlerror() else { return "unknown dynamic loader error" }
        return String(cString: message)
    }
}
