import Foundation
import Glibc
import XCTest
@testable import Guest

/// The one reader of this host's files: whole and bounded, or in chunks.
final class HostFileTests: XCTestCase {
    private var path = ""
    /// Longer than two of the reader's 64 KiB chunks, not a multiple of one.
    private let contents = (0 ..< 150_001).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    override func setUpWithError() throws {
        path = NSTemporaryDirectory() + "swvmm-hostfile-\(getpid())-\(UUID().uuidString.prefix(8))"
        try Data(contents).write(to: URL(fileURLWithPath: path))
    }

    override func tearDown() { unlink(path) }

    func testChunksArriveInOrderAndAddUpToTheFile() {
        var seen: [UInt8] = [], chunks = 0
        let result = HostFile.forEachChunk(path) { chunk in
            XCTAssertLessThanOrEqual(chunk.count, 1 << 16)
            seen += chunk
            chunks += 1
        }
        XCTAssertEqual(try result.get(), contents.count)
        XCTAssertEqual(seen, contents)
        XCTAssertGreaterThanOrEqual(chunks, 3)
        XCTAssertEqual(try HostFile.read(path, limit: contents.count).get(), contents)
    }

    func testAFileLongerThanTheLimitIsRefused() {
        var seen = 0
        let result = HostFile.forEachChunk(path, limit: contents.count - 1) { seen += $0.count }
        XCTAssertThrowsError(try result.get()) { XCTAssertEqual(($0 as? HostFile.Failure)?.errno, EFBIG) }
        XCTAssertLessThan(seen, contents.count, "no byte past the limit is handed on")
        XCTAssertThrowsError(try HostFile.read(path, limit: contents.count - 1).get())
    }

    func testAMissingFileSaysWhy() {
        XCTAssertThrowsError(try HostFile.forEachChunk(path + "-missing") { _ in XCTFail("no chunk") }.get()) {
            XCTAssertEqual(($0 as? HostFile.Failure)?.errno, ENOENT)
        }
    }
}
