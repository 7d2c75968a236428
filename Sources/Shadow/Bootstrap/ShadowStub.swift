/// The code and data S runs from: one region, mapped by the borrowed process
/// and inherited by S through fork.
///
/// Layout (offsets from the region base):
/// - page 0: the stub's code at 0, the header at `headerOffset`
///   (magic, version, cookie, the sleep's timespec, the signal set S blocks,
///   the CPU set S pins itself to);
/// - page 1: S's stack (the stub pushes nothing; the kernel needs rsp sane);
/// - pages 2...: the data area handed to executors (`dataOffset`).
///
/// The stub (x86-64, hand-assembled; the encodings are in `code`):
///
///     entry: lea rdi, [rip + region]       ; first page
///            mov ecx, PAGES
///     touch: mov al, [rdi]                 ; write every page once: breaks
///            mov [rdi], al                 ; fork's copy-on-write, so S's PTEs
///            add rdi, 4096                 ; become writable for the host
///            dec ecx
///            jnz touch
///     loop:  dec qword [rip + idle]        ; the idle countdown: S ends itself
///            jz exit                       ; when no executor reset it in time
///            mov eax, 35                   ; nanosleep(&timespec, NULL)
///            lea rdi, [rip + timespec]
///            xor esi, esi
///     SYS:   syscall
///     TRAP:  mov rbx, rax                  ; the trap point a GDB executor uses;
///            jmp loop                      ; rbx keeps the result for swvmm's
///                                          ; own executor, which sees S only at
///                                          ; its next syscall entry
///     exit:  mov eax, 231                  ; exit_group(0): a clean end, reaped
///            xor edi, edi                  ; by init (S's parent)
///            syscall
///
/// The batch runner (an executor enters it with rbx = the first entry of a
/// `BatchTable` in the data area, r12 = the number of entries, r13 = where
/// to go when they are done: TRAP for a GDB executor, so N calls cost one
/// guest stop; PORT for swvmm's own, whose syscall-entry trap is off while
/// the batch runs, so N calls cost the one exit of PORT's `out`):
///
///     BATCH: test r12, r12                 ; entries left?
///            jz done
///            xor ecx, ecx                  ; for each argument k:
///     res:   movzx eax, byte [rbx+rcx+56]  ;   back-reference r (0: literal)
///            test eax, eax
///            jz next
///            imul eax, eax, 72             ;   the result of entry i - r
///            mov rdx, rbx                  ;   replaces argument k
///            sub rdx, rax
///            mov rdx, [rdx+64]
///            mov [rbx+rcx*8+8], rdx
///     next:  inc ecx
///            cmp ecx, 6
///            jne res
///            mov rax, [rbx]                ; number and six arguments
///            mov rdi, [rbx+8] ... mov r9, [rbx+48]
///            syscall
///            mov [rbx+64], rax             ; the result, for the host and for
///            add rbx, 72                   ; later entries' references
///            dec r12
///            jmp BATCH
///     done:  jmp r13
///     PORT:  mov edx, r14d                 ; the port swvmm gave (S may write
///            out dx, al                    ; it: ioperm), one exit at CPL 3
///            jmp TRAP
public struct ShadowStub: Equatable, Sendable {
    /// Header magic, "SWVMMSHD".
    public static let magic: [UInt8] = Array("SWVMMSHD".utf8)
    /// Layout version in the header; bumped when the layout changes.
    public static let version: UInt32 = 6
    public static let headerOffset = 0x100
    static let magicOffset = headerOffset, versionOffset = headerOffset + 8
    public static let cookieOffset = headerOffset + 0x10
    public static let cookieLength = 16
    public static let timespecOffset = headerOffset + 0x20
    public static let sigsetOffset = headerOffset + 0x30
    /// The idle countdown (a 64-bit count of sleeps; 0 counts down through
    /// 2^64, i.e. never ends S). An executor holding S sets it to 0 and,
    /// when it closes, to the idle timeout's count.
    public static let idleCountdownOffset = headerOffset + 0x38
    public static let cpusetOffset = headerOffset + 0x40
    /// Bytes of cpu_set_t written (`LinuxABI.cpuSetBytes`).
    public static let cpusetLength = LinuxABI.cpuSetBytes
    /// S's process name, NUL-terminated, for prctl(PR_SET_NAME).
    public static let nameOffset = cpusetOffset + cpusetLength
    /// The name S shows in the guest's `ps`: what it is, for whoever looks.
    public static let processName = "swvmm-shadow"
    /// The kernel's comm length with its NUL (TASK_COMM_LEN, include/linux/sched.h).
    public static let nameLength = 16
    public static let headerEnd = nameOffset + nameLength
    /// S's stack top: the end of page 1, minus a red zone's worth.
    public static let stackTop = 2 * 4096 - 128
    /// Where the executor's data area starts.
    public static let dataOffset = 2 * 4096
    /// Smallest region: code page, stack page, one data page.
    public static let minimumRegion = 3 * 4096
    /// Largest region this bootstrap makes (bounds the touch loop and fork cost).
    public static let maximumRegion = 16 << 20

    /// Offsets in the code (see the listing above).
    public static let entryOffset = 0
    public static let loopOffset = 27
    public static let syscallOffset = 50
    public static let trapOffset = 52
    public static let exitOffset = 57
    public static let batchOffset = 66
    static let batchDoneOffset = batchOffset + 0x53
    /// Just past the batch runner's `syscall` (its 68th byte).
    public static let batchCallReturnOffset = batchOffset + 70
    /// PORT: where a batch ends for swvmm's own executor (r13).
    public static let portExitOffset = batchDoneOffset + 3
    /// The `out dx, al` in PORT: the rip of its exit.
    public static let portOutOffset = portExitOffset + 3
    public static let codeLength = portOutOffset + 3

    /// Total region size in bytes (a multiple of 4096).
    public let regionLength: Int
    /// Nanoseconds S sleeps between trap points.
    public let sleepNanoseconds: UInt64

    public init(regionLength: Int, sleepNanoseconds: UInt64) throws {
        guard regionLength >= ShadowStub.minimumRegion, regionLength <= ShadowStub.maximumRegion,
              regionLength % 4096 == 0 else {
            throw ShadowError.badArgument("region length \(regionLength) must be a multiple of 4096 in \(ShadowStub.minimumRegion)...\(ShadowStub.maximumRegion)")
        }
        guard sleepNanoseconds >= 1_000, sleepNanoseconds <= 10_000_000_000 else {
            throw ShadowError.badArgument("sleep of \(sleepNanoseconds) ns is outside 1 µs...10 s")
        }
        self.regionLength = regionLength
        self.sleepNanoseconds = sleepNanoseconds
    }

    /// The stub's machine code (position independent).
    public var code: [UInt8] {
        let pages = UInt32(regionLength / 4096)
        var bytes: [UInt8] = []
        // entry: lea rdi, [rip + disp32] -> region base (disp = 0 - 7)
        bytes += [0x48, 0x8D, 0x3D] + le32(Int32(0 - 7))
        bytes += [0xB9] + le32(Int32(bitPattern: pages))             // mov ecx, pages
        bytes += [0x8A, 0x07]                                          // touch: mov al, [rdi]
        bytes += [0x88, 0x07]                                          // mov [rdi], al
        bytes += [0x48, 0x81, 0xC7] + le32(4096)                       // add rdi, 4096
        bytes += [0xFF, 0xC9]                                          // dec ecx
        bytes += [0x75, UInt8(bitPattern: Int8(12 - 27))]              // jnz touch
        bytes += [0x48, 0xFF, 0x0D] + le32(Int32(ShadowStub.idleCountdownOffset - 34)) // loop: dec qword [rip + idle]
        bytes += [0x74, UInt8(ShadowStub.exitOffset - 36)]             // jz exit
        bytes += [0xB8] + le32(Int32(LinuxABI.Syscall.nanosleep))      // mov eax, 35
        bytes += [0x48, 0x8D, 0x3D] + le32(Int32(ShadowStub.timespecOffset - 48)) // lea rdi, [rip + timespec]
        bytes += [0x31, 0xF6]                                          // xor esi, esi
        bytes += [0x0F, 0x05]                                          // SYS: syscall
        bytes += [0x48, 0x89, 0xC3]                                    // TRAP: mov rbx, rax
        bytes += [0xEB, UInt8(bitPattern: Int8(ShadowStub.loopOffset - ShadowStub.exitOffset))] // TRAP: jmp loop
        bytes += [0xB8] + le32(Int32(LinuxABI.Syscall.exitGroup))      // exit: mov eax, 231
        bytes += [0x31, 0xFF]                                          // xor edi, edi
        bytes += [0x0F, 0x05]                                          // syscall
        bytes += ShadowStub.batchRunner
        bytes += [0x41, 0xFF, 0xE5]                                    // done: jmp r13
        bytes += [0x44, 0x89, 0xF2]                                    // PORT: mov edx, r14d
        bytes += [0xEE]                                                // out dx, al
        bytes += [0xEB, UInt8(bitPattern: Int8(ShadowStub.trapOffset - ShadowStub.codeLength))] // jmp TRAP
        return bytes
    }

    /// BATCH up to `done` (listing above; `BatchTable` fixes the entry layout
    /// these displacements use: number at 0, arguments at 8, references at
    /// 56, result at 64, 72 bytes an entry).
    static let batchRunner: [UInt8] = [
        0x4D, 0x85, 0xE4,                   // test r12, r12
        0x74, 0x4E,                         // jz done
        0x31, 0xC9,                         // xor ecx, ecx
        0x0F, 0xB6, 0x44, 0x0B, 0x38,       // res: movzx eax, byte [rbx+rcx+56]
        0x85, 0xC0,                         // test eax, eax
        0x74, 0x12,                         // jz next
        0x6B, 0xC0, 0x48,                   // imul eax, eax, 72
        0x48, 0x89, 0xDA,                   // mov rdx, rbx
        0x48, 0x29, 0xC2,                   // sub rdx, rax
        0x48, 0x8B, 0x52, 0x40,             // mov rdx, [rdx+64]
        0x48, 0x89, 0x54, 0xCB, 0x08,       // mov [rbx+rcx*8+8], rdx
        0xFF, 0xC1,                         // next: inc ecx
        0x83, 0xF9, 0x06,                   // cmp ecx, 6
        0x75, 0xDE,                         // jne res
        0x48, 0x8B, 0x03,                   // mov rax, [rbx]
        0x48, 0x8B, 0x7B, 0x08,             // mov rdi, [rbx+8]
        0x48, 0x8B, 0x73, 0x10,             // mov rsi, [rbx+16]
        0x48, 0x8B, 0x53, 0x18,             // mov rdx, [rbx+24]
        0x4C, 0x8B, 0x53, 0x20,             // mov r10, [rbx+32]
        0x4C, 0x8B, 0x43, 0x28,             // mov r8, [rbx+40]
        0x4C, 0x8B, 0x4B, 0x30,             // mov r9, [rbx+48]
        0x0F, 0x05,                         // syscall
        0x48, 0x89, 0x43, 0x40,             // mov [rbx+64], rax
        0x48, 0x83, 0xC3, 0x48,             // add rbx, 72
        0x49, 0xFF, 0xCC,                   // dec r12
        0xEB, 0xAD,                         // jmp BATCH
    ]

    /// The idle countdown for `timeout` of S's sleeps (0 for no timeout:
    /// S then never ends itself).
    public func idleCountdown(for timeout: Duration?) -> UInt64 {
        guard let timeout, timeout > .zero else { return 0 }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        return max(1, UInt64(min(nanoseconds / Double(sleepNanoseconds), Double(UInt32.max))))
    }

    /// Page 0 of the region: code and header with `cookie`, the sleep, a full
    /// signal set, the idle countdown, S's name and, when `cpu` is given, a
    /// CPU set holding only it.
    public func firstPage(cookie: [UInt8], cpu: Int?, idleCountdown: UInt64 = 0) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 4096)
        page.replaceSubrange(0 ..< ShadowStub.codeLength, with: code)
        page.replaceSubrange(ShadowStub.magicOffset ..< ShadowStub.magicOffset + 8, with: ShadowStub.magic)
        page.replaceSubrange(ShadowStub.versionOffset ..< ShadowStub.versionOffset + 4, with: le32(Int32(ShadowStub.version)))
        let cookieBytes = Array(cookie.prefix(ShadowStub.cookieLength))
        page.replaceSubrange(ShadowStub.cookieOffset ..< ShadowStub.cookieOffset + cookieBytes.count, with: cookieBytes)
        page.replaceSubrange(ShadowStub.timespecOffset ..< ShadowStub.timespecOffset + 16,
                             with: le64(sleepNanoseconds / 1_000_000_000) + le64(sleepNanoseconds % 1_000_000_000))
        page.replaceSubrange(ShadowStub.sigsetOffset ..< ShadowStub.sigsetOffset + 8, with: [UInt8](repeating: 0xFF, count: 8))
        page.replaceSubrange(ShadowStub.idleCountdownOffset ..< ShadowStub.idleCountdownOffset + 8, with: le64(idleCountdown))
        let name = Array(ShadowStub.processName.utf8.prefix(ShadowStub.nameLength - 1))
        page.replaceSubrange(ShadowStub.nameOffset ..< ShadowStub.nameOffset + name.count, with: name)
        if let mask = cpu.flatMap(LinuxABI.cpuSet(only:)) {
            page.replaceSubrange(ShadowStub.cpusetOffset ..< ShadowStub.cpusetOffset + mask.count, with: mask)
        }
        return page
    }
}

func le32(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
