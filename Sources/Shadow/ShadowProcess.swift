import Guest

/// Where the shadow process S lives in the guest: everything needed to find
/// it again (also from a later connection, through `ShadowStateFile`).
public struct ShadowProcess: Equatable, Sendable {
    /// S's pid in the guest (as its creator saw it).
    public var pid: Int64
    /// How S's addresses translate: its page-table root (cr3 address bits,
    /// as seen in user mode) and the guest's paging mode when S was made.
    public var paging: PagingContext
    /// Guest-virtual base of S's region (stub, header, stack, data).
    public var regionBase: UInt64
    /// Bytes in the region.
    public var regionLength: Int
    /// The random cookie in the region's header.
    public var cookie: [UInt8]
    /// S's sleep between trap points, in nanoseconds.
    public var sleepNanoseconds: UInt64
    /// The process borrowed to create S (for reports).
    public var borrowedPID: Int64

    public init(pid: Int64, paging: PagingContext, regionBase: UInt64, regionLength: Int, cookie: [UInt8],
                sleepNanoseconds: UInt64, borrowedPID: Int64) {
        self.pid = pid; self.paging = paging; self.regionBase = regionBase; self.regionLength = regionLength
        self.cookie = cookie; self.sleepNanoseconds = sleepNanoseconds; self.borrowedPID = borrowedPID
    }

    /// S's page-table root.
    public var root: UInt64 { paging.root }
    /// The stub's `syscall` instruction (SYS).
    public var syscallAddress: UInt64 { regionBase &+ UInt64(ShadowStub.syscallOffset) }
    /// The trap point (TRAP = SYS + 2): where S is caught.
    public var trapAddress: UInt64 { regionBase &+ UInt64(ShadowStub.trapOffset) }
    /// Where S's stub runs a batch of calls (`ShadowStub.batchOffset`).
    public var batchAddress: UInt64 { regionBase &+ UInt64(ShadowStub.batchOffset) }
    /// Where the batch runner's calls return (rcx at their syscall entry).
    public var batchCallReturnAddress: UInt64 { regionBase &+ UInt64(ShadowStub.batchCallReturnOffset) }
    /// PORT, where a batch ends for swvmm's own executor, and its `out` (the rip of that exit).
    public var portExitAddress: UInt64 { regionBase &+ UInt64(ShadowStub.portExitOffset) }
    public var portOutAddress: UInt64 { regionBase &+ UInt64(ShadowStub.portOutOffset) }
    /// The executor's data area.
    public var dataAddress: UInt64 { regionBase &+ UInt64(ShadowStub.dataOffset) }
}
