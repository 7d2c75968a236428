import Foundation
import XCTest
import Guest
import Synchronization

/// The helpers every module shares: hex, errno text, little-endian bytes, the clock, write-all.
final class SharedFormattingTests: XCTestCase {
    func testHexIsLowerCaseAndPadded() {
        XCTAssertEqual(hex(UInt16(0xAA55)), "aa55")
        XCTAssertEqual(hex(UInt8(5), width: 2), "05")
        XCTAssertEqual(hex(UInt64(0x3F8), width: 4), "03f8")
        XCTAssertEqual(hex(UInt64(0x12345), width: 2), "12345", "width pads, never truncates")
        XCTAssertEqual(UInt64(0xFFFF_FFFF_8100_0000).guestHex, "0xffffffff81000000")
    }

    func testErrnoTextNamesTheNumber() {
        XCTAssertEqual(errnoText(ENOENT), "No such file or directory (errno 2)")
    }

    func testLittleEndianRoundTrip() {
        XCTAssertEqual(UInt32(littleEndianBytes: [0x78, 0x56, 0x34, 0x12, 0xFF]), 0x1234_5678)
        XCTAssertEqual(UInt64(littleEndianBytes: [0x01, 0x02]), 0x0201, "missing high bytes are zero")
        XCTAssertEqual(UInt16(0xAA55).littleEndianBytes(), [0x55, 0xAA])
        XCTAssertEqual(UInt16(0xAA55).littleEndianBytes(count: 4), [0x55, 0xAA, 0, 0])
    }

    func testMonotonicClockAdvances() {
        let first = monotonicNanoseconds()
        usleep(2000)
        XCTAssertGreaterThanOrEqual(monotonicNanoseconds() - first, 2_000_000)
    }

    /// More than a pipe holds (64 KiB): writeAll must loop over short writes.
    func testWriteAllWritesEverythingThroughAPipe() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let payload = (0 ..< 300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let reader = fds[0]
        let received = LockedBytes()
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 8192)
            while true {
                let count = read(reader, &buffer, buffer.count)
                if count <= 0 { break }
                received.append(buffer[0 ..< count])
            }
        }
        thread.start()
        let failure = payload.withUnsafeBytes { writeAll(fds[1], $0) }
        close(fds[1])
        XCTAssertNil(failure)
        let deadline = Date().addingTimeInterval(10)
        while received.count < payload.count, Date() < deadline { usleep(1000) }
        close(reader)
        XCTAssertEqual(received.bytes, payload)
        XCTAssertEqual(writeAll(-1, "x"), EBADF)
    }
}

/// Bytes appended from one thread and read from another.
private final class LockedBytes: Sendable {
    private let storage = Mutex<[UInt8]>([])
    func append(_ bytes: ArraySlice<UInt8>) { storage.withLock { $0 += bytes } }
    var count: Int { storage.withLock { $0.count } }
    var bytes: [UInt8] { storage.withLock { $0 } }
}
