/// XXH64 (Yann Collet's xxHash, 64-bit, seed 0), written from the xxHash
/// specification (doc/xxhash_spec.md in the xxHash repository): the memo key's
/// hash of the inspector's files. Those are megabytes per run (the binary,
/// libc and every other library it maps), and FNV-1a's one multiplication per
/// byte, serial, cost about as much as a whole `ps -e` through the supervisor;
/// XXH64 reads eight bytes per step in four independent lanes. A cache key,
/// not a defence against someone who can write the inspector's files.
/// Equal to `xxhsum -H1` (Debian's xxhash package) on the same bytes.
enum XXH64 {
    // The five 64-bit primes of the specification.
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// The hash of `bytes`.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = bytes.baseAddress else { return finish(prime5, tail: bytes, from: 0) }
        let count = bytes.count
        var offset = 0
        var accumulator: UInt64
        if count >= 32 {
            var lane1 = prime1 &+ prime2, lane2 = prime2, lane3: UInt64 = 0, lane4 = 0 &- prime1
            while offset <= count - 32 {
                lane1 = round(lane1, word(base, offset))
                lane2 = round(lane2, word(base, offset + 8))
                lane3 = round(lane3, word(base, offset + 16))
                lane4 = round(lane4, word(base, offset + 24))
                offset += 32
            }
            accumulator = rotl(lane1, 1) &+ rotl(lane2, 7) &+ rotl(lane3, 12) &+ rotl(lane4, 18)
            accumulator = merge(accumulator, lane1)
            accumulator = merge(accumulator, lane2)
            accumulator = merge(accumulator, lane3)
            accumulator = merge(accumulator, lane4)
        } else {
            accumulator = prime5
        }
        return finish(accumulator &+ UInt64(count), tail: bytes, from: offset)
    }

    /// The hash of `bytes`.
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// The last fewer-than-32 bytes, then the avalanche.
    private static func finish(_ seeded: UInt64, tail bytes: UnsafeRawBufferPointer, from start: Int) -> UInt64 {
        var accumulator = seeded, offset = start
        if let base = bytes.baseAddress {
            while offset + 8 <= bytes.count {
                accumulator = rotl(accumulator ^ round(0, word(base, offset)), 27) &* prime1 &+ prime4
                offset += 8
            }
            if offset + 4 <= bytes.count {
                let half = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                accumulator = rotl(accumulator ^ (half &* prime1), 23) &* prime2 &+ prime3
                offset += 4
            }
            while offset < bytes.count {
                accumulator = rotl(accumulator ^ (UInt64(bytes[offset]) &* prime5), 11) &* prime1
                offset += 1
            }
        }
        accumulator ^= accumulator >> 33
        accumulator = accumulator &* prime2
        accumulator ^= accumulator >> 29
        accumulator = accumulator &* prime3
        return accumulator ^ (accumulator >> 32)
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
