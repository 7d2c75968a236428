/// One virtual CPU of a target, numbered from 0 in the order the target lists them.
///
/// The number is the target's own index (a KVM vCPU index, or the position of a
/// thread in a GDB stub's thread list), not an APIC id.
public struct VCPUID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public init(_ index: Int) { self.rawValue = index }
    public static func < (a: VCPUID, b: VCPUID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "vCPU \(rawValue)" }
}
