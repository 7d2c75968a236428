/// Why a device could not be registered on a bus.
public enum BusError: Error, Equatable, CustomStringConvertible {
    /// A range of length zero decodes nothing and is almost certainly a bug.
    case emptyRange(space: BusAddressSpace, name: String, base: UInt64)
    /// `base + length` runs past the end of the address space.
    case rangeWrapsAround(space: BusAddressSpace, name: String, base: UInt64, length: UInt64)
    /// The new range shares at least one address with a registered one.
    case overlap(space: BusAddressSpace, name: String, base: UInt64, length: UInt64,
                 existingName: String, existingBase: UInt64, existingLength: UInt64)

    public var description: String {
        switch self {
        case let .emptyRange(space, name, base):
            return "\(space.rawValue) device '\(name)' registered at \(space.format(base)) with length 0"
        case let .rangeWrapsAround(space, name, base, length):
            return "\(space.rawValue) device '\(name)' at \(space.format(base)) with length \(length) runs past the end of the address space"
        case let .overlap(space, name, base, length, existingName, existingBase, existingLength):
            return "\(space.rawValue) device '\(name)' at \(space.format(base))..\(space.format(base + length - 1))"
                + " overlaps '\(existingName)' at \(space.format(existingBase))..\(space.format(existingBase + existingLength - 1))"
        }
    }
}
