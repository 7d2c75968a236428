/// XXH64 (Yann Collet's xxHash, 64-bit, seed 0), written from the xxHash
/// specification (doc/xxhash_spec.md in the xxHash repository): the memo key's
/// hash of the inspector's files. Those are megabytes per run (the binary,
/// libc and every other library it maps), and FNV-1a's one multiplication per
/// byte, serial, cost about as much as a whole `ps -e` through the supervisor;
/// XXH64 reads eight bytes per step in four independent lanes. Fed in pieces
/// of any size, it gives what one piece of all the bytes gives. A cache key,
/// not a defence against someone who can write the inspector's files.
/// Equal to `xxhsum -H1` (Debian's xxhash package) on the same bytes.
struct XXH64 {
    // The five 64-bit primes of the specification.
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5
    /// The specification's stripe: four lanes of eight bytes.
    private static let stripe = 32

    private var lanes = (prime1 &+ prime2, prime2, UInt64(0), 0 &- prime1)
    private var length = 0
    /// The bytes after the last whole stripe (fewer than 32).
    private var pending: [UInt8] = []

    init() { pending.reserveCapacity(Self.stripe) }

    /// The hash of `bytes`.
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var hasher = XXH64()
        bytes.withUnsafeBytes { hasher.add($0) }
        return hasher.value
    }

    /// Appends `bytes` to what is hashed.
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        length += bytes.count
        var rest = bytes[...]
        if !pending.isEmpty {
            let taken = min(Self.stripe - pending.count, rest.count)
            pending += rest.prefix(taken)
            rest = rest.dropFirst(taken)
            guard pending.count == Self.stripe else { return }
            pending.withUnsafeBytes { consumeStripes(UnsafeRawBufferPointer($0)) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = rest.count - rest.count % Self.stripe
        consumeStripes(UnsafeRawBufferPointer(rebasing: rest.prefix(whole)))
        pending += rest.dropFirst(whole)
    }

    /// The hash of everything added so far.
    var value: UInt64 {
        var accumulator: UInt64
        if length >= Self.stripe {
            let (lane1, lane2, lane3, lane4) = lanes
            accumulator = Self.rotl(lane1, 1) &+ Self.rotl(lane2, 7) &+ Self.rotl(lane3, 12) &+ Self.rotl(lane4, 18)
            accumulator = Self.merge(accumulator, lane1)
            accumulator = Self.merge(accumulator, lane2)
            accumulator = Self.merge(accumulator, lane3)
            accumulator = Self.merge(accumulator, lane4)
        } else {
            accumulator = Self.prime5
        }
        accumulator &+= UInt64(length)
        pending.withUnsafeBytes { tail in
            guard let base = tail.baseAddress else { return }
            var offset = 0
            while offset + 8 <= tail.count {
                accumulator = Self.rotl(accumulator ^ Self.round(0, Self.word(base, offset)), 27) &* Self.prime1 &+ Self.prime4
                offset += 8
            }
            if offset + 4 <= tail.count {
                let half = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                accumulator = Self.rotl(accumulator ^ (half &* Self.prime1), 23) &* Self.prime2 &+ Self.prime3
                offset += 4
            }
            while offset < tail.count {
                accumulator = Self.rotl(accumulator ^ (UInt64(tail[offset]) &* Self.prime5), 11) &* Self.prime1
                offset += 1
            }
        }
        accumulator ^= accumulator >> 33
        accumulator = accumulator &* Self.prime2
        accumulator ^= accumulator >> 29
        accumulator = accumulator &* Self.prime3
        return accumulator ^ (accumulator >> 32)
    }

    /// Runs the four lanes over `bytes`, a whole number of stripes.
    private mutating func consumeStripes(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var (lane1, lane2, lane3, lane4) = lanes
        var offset = 0
        while offset + Self.stripe <= bytes.count {
            lane1 = Self.round(lane1, Self.word(base, offset))
            lane2 = Self.round(lane2, Self.word(base, offset + 8))
            lane3 = Self.round(lane3, Self.word(base, offset + 16))
            lane4 = Self.round(lane4, Self.word(base, offset + 24))
            offset += Self.stripe
        }
        lanes = (lane1, lane2, lane3, lane4)
    }

    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotl(accumulator &+ input &* prime2, 31) &* prime1
    }

    private static func merge(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        (accumulator ^ round(0, lane)) &* prime1 &+ prime4
    }

    private static func word(_ base: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    private static func rotl(_ value: UInt64, _ bits: UInt64) -> UInt64 {
        (value << bits) | (value >> (64 - bits))
    }
}
