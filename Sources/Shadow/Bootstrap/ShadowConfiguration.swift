/// How to build S.
public struct ShadowConfiguration: Sendable {
    /// Region size in bytes (multiple of 4096; 2 pages are stub and stack).
    public var regionLength = 64 << 10
    /// S's wait between trap points (DESIGN.md §1: short, configurable).
    public var sleepNanoseconds: UInt64 = 20_000_000
    /// The guest CPU S pins itself to (the dedicated vCPU), or nil.
    public var dedicatedCPU: Int? = nil
    /// Budget for finding a user context to borrow.
    public var userContextTimeout: Duration = .seconds(60)
    /// Budget for each injected call (and for S to reach its trap point).
    public var callTimeout: Duration = .seconds(10)
    /// S ends itself (exit_group(0)) after this long without an executor
    /// parking it; nil: never.
    public var idleTimeout: Duration? = ShadowConfiguration.defaultIdleTimeout
    /// The default idle timeout of S: ten minutes.
    public static let defaultIdleTimeout: Duration = .seconds(600)
    /// Decides whether a candidate process (by guest pid) may be borrowed;
    /// PID 1 never is. Nil accepts every other process.
    public var acceptBorrowed: (@Sendable (Int64) -> Bool)? = nil

    public init() {}
}
