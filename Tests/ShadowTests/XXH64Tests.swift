@testable import Shadow
import XCTest

/// The memo key's content hash against the reference implementation: each
/// expected value is `xxhsum -H1` (Debian's xxhash 0.8.1) of the same bytes,
/// lengths chosen to cross every branch (the 32-byte stripes, 8-byte words,
/// the 4-byte half word, single bytes).
final class XXH64Tests: XCTestCase {
    /// Bytes 0..<count with byte i = (7i + 3) mod 256, as the vectors were made:
    /// python3 -c "import sys; sys.stdout.buffer.write(bytes((i*7+3)&255 for i in range(N)))" | xxhsum -H1
    private func pattern(_ count: Int) -> [UInt8] {
        (0 ..< count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    }

    func testMatchesXxhsumAcrossEveryBranch() {
        let expected: [(Int, UInt64)] = [
            (0, 0xef46db3751d8e999), (1, 0x1f25c8d0bc1f4bb6), (3, 0x31d2363f52e564c9), (4, 0x9bb64b7d66ee9fda),
            (7, 0x9a7b149959ce60d8), (8, 0xdab99d95c6f90092), (9, 0x170bb6bf975b4c02), (31, 0xa2aa5f33cc4a6119),
            (32, 0x23c3c17ef790fd97), (33, 0x50a7cfc7ba588784), (63, 0x5e3e54b431c7493c), (64, 0x0eb64b3ef6eeb01f),
            (100, 0xa61f8d4c170fe531), (1000, 0x5f235fa033f1a3fb), (4099, 0x6243e90ade852967),
        ]
        for (count, value) in expected {
            XCTAssertEqual(XXH64.hash(pattern(count)), value, "\(count) bytes")
        }
        XCTAssertEqual(XXH64.hash(Array("abc".utf8)), 0x44bc2cf5ad770999)
    }

    /// Fed in pieces of every size from 1 to 70 bytes (pending bytes carried
    /// over a stripe, pieces of whole stripes, pieces inside one stripe).
    func testPiecesHashLikeTheWhole() {
        let bytes = pattern(4099)
        for size in 1 ... 70 {
            var hasher = XXH64()
            bytes.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count {
                    let end = min(offset + size, all.count)
                    hasher.add(UnsafeRawBufferPointer(rebasing: all[offset ..< end]))
                    offset = end
                }
            }
            XCTAssertEqual(hasher.value, 0x6243e90ade852967, "pieces of \(size)")
        }
    }

    func testUnalignedInputHashesLikeAlignedInput() {
        let bytes = pattern(1000)
        let shifted = [0xAA] + bytes
        var hasher = XXH64()
        shifted.withUnsafeBytes { hasher.add(UnsafeRawBufferPointer(rebasing: $0[1...])) }
        let value = hasher.value
        XCTAssertEqual(value, 0x5f235fa033f1a3fb)
    }
}
