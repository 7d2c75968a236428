import XCTest
@testable import VMM

final class ConsoleEscapeTests: XCTestCase {
    func testPlainBytesPassThrough() {
        var escape = ConsoleEscape()
        let result = escape.filter(Array("ls -l\r".utf8))
        XCTAssertEqual(result.forward, Array("ls -l\r".utf8))
        XCTAssertFalse(result.quit)
    }

    func testCtrlAThenXQuitsAndDropsTheRest() {
        var escape = ConsoleEscape()
        let result = escape.filter([0x61, 0x01, 0x78, 0x62])
        XCTAssertEqual(result.forward, [0x61])
        XCTAssertTrue(result.quit)
    }

    func testCtrlACtrlASendsOneCtrlA() {
        var escape = ConsoleEscape()
        XCTAssertEqual(escape.filter([0x01, 0x01, 0x63]).forward, [0x01, 0x63])
    }

    func testCtrlAThenOtherKeyForwardsBoth() {
        var escape = ConsoleEscape()
        XCTAssertEqual(escape.filter([0x01, 0x63]).forward, [0x01, 0x63])
        XCTAssertFalse(escape.awaitingCommand)
    }

    func testEscapeSplitAcrossReads() {
        var escape = ConsoleEscape()
        XCTAssertEqual(escape.filter([0x70, 0x01]).forward, [0x70])
        XCTAssertTrue(escape.awaitingCommand)
        XCTAssertTrue(escape.filter([0x78]).quit)
    }

    func testPlainXIsNotQuit() {
        var escape = ConsoleEscape()
        XCTAssertEqual(escape.feed(0x78), .forward(0x78))
    }
}
