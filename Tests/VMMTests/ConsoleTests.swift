import Foundation
import Glibc
import XCTest
@testable import VMM

/// A sink that records what the console delivered and can refuse input (to exercise waiting).
private final class RecordingSink: ConsoleInputSink {
    private let lock = NSLock()
    private var received: [UInt8] = []
    private var room: Int
    init(room: Int = .max) { self.room = room }

    var bytes: [UInt8] { lock.withLock { received } }
    func grow(by count: Int) { lock.withLock { room += count } }

    func enqueueInput(_ bytes: [UInt8]) { lock.withLock { received += bytes } }
    func offerInput(_ bytes: ArraySlice<UInt8>) -> Int {
        lock.withLock {
            let taken = min(room, bytes.count)
            received += bytes.prefix(taken)
            room -= taken
            return taken
        }
    }
}

final class ConsoleTests: XCTestCase {
    private func waitUntil(_ condition: () -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(5)
        while !condition() && Date() < deadline { usleep(1000) }
        XCTAssertTrue(condition(), "timed out", file: file, line: line)
    }

    private func attributes(_ fd: Int32) -> termios {
        var value = termios()
        XCTAssertEqual(tcgetattr(fd, &value), 0)
        return value
    }

    func testPseudoTerminalIsRawWhileRunningAndRestoredTwiceSafely() throws {
        var controller: Int32 = -1, terminal: Int32 = -1
        guard openpty(&controller, &terminal, nil, nil, nil) == 0 else {
            throw XCTSkip("openpty failed (errno \(errno)): no pseudo-terminals here")
        }
        defer { close(controller); close(terminal) }
        let before = attributes(terminal)
        XCTAssertNotEqual(before.c_lflag & tcflag_t(ICANON | ECHO), 0, "a fresh pty is canonical with echo")

        let sink = RecordingSink()
        var quits = 0
        let console = try TerminalConsole(input: sink, inputFD: terminal, onQuit: { quits += 1 })
        XCTAssertTrue(console.isTerminal)
        try console.start()
        let raw = attributes(terminal)
        XCTAssertEqual(raw.c_lflag & tcflag_t(ICANON | ECHO | ISIG), 0, "raw: no line editing, echo or signals")
        XCTAssertEqual(raw.c_oflag, before.c_oflag, "output processing kept")

        let typed: [UInt8] = [0x6C, 0x73, 0x01, 0x01, 0x0D, 0x03, 0x01, 0x78, 0x7A]
        XCTAssertEqual(typed.withUnsafeBytes { write(controller, $0.baseAddress, $0.count) }, typed.count)
        waitUntil { quits == 1 }
        XCTAssertEqual(sink.bytes, [0x6C, 0x73, 0x01, 0x0D, 0x03], "Ctrl-A Ctrl-A is one Ctrl-A, Ctrl-C passes, nothing after Ctrl-A x")

        console.restore()
        console.restore()
        let after = attributes(terminal)
        XCTAssertEqual(after.c_lflag, before.c_lflag)
        XCTAssertEqual(after.c_iflag, before.c_iflag)
        console.stop()
        XCTAssertThrowsError(try console.start()) { XCTAssertEqual($0 as? ConsoleError, .alreadyStarted) }
    }

    func testDeinitRestoresTheTerminal() throws {
        var controller: Int32 = -1, terminal: Int32 = -1
        guard openpty(&controller, &terminal, nil, nil, nil) == 0 else {
            throw XCTSkip("openpty failed (errno \(errno)): no pseudo-terminals here")
        }
        defer { close(controller); close(terminal) }
        let before = attributes(terminal)
        do {
            let console = try TerminalConsole(input: RecordingSink(), inputFD: terminal, onQuit: {})
            try console.start()
            XCTAssertEqual(attributes(terminal).c_lflag & tcflag_t(ICANON), 0)
        }
        XCTAssertEqual(attributes(terminal).c_lflag, before.c_lflag)
    }

    func testPipeInputIsDeliveredWithoutLossOrEscapesAndEOFStops() throws {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        let sink = RecordingSink(room: 3)
        var quits = 0
        let console = try TerminalConsole(input: sink, inputFD: fds[0], onQuit: { quits += 1 })
        XCTAssertFalse(console.isTerminal)
        try console.start()
        let sent: [UInt8] = [0x61, 0x01, 0x78, 0x62, 0x63, 0x64]
        XCTAssertEqual(sent.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }, sent.count)
        close(fds[1])                                   // EOF after the data
        waitUntil { sink.bytes.count == 3 }
        usleep(20_000)
        XCTAssertEqual(sink.bytes.count, 3, "waits while the sink is full instead of dropping")
        sink.grow(by: 10)
        waitUntil { sink.bytes == sent }
        XCTAssertEqual(quits, 0, "escapes are not interpreted on a pipe")
        console.stop()                                  // joins a reader that already hit EOF
    }

    func testOutputWritesEveryByteAndCaptures() throws {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let capture = ConsoleCapture(capacity: 64)
        let output = ConsoleOutput(fd: fds[1], capture: capture)
        Array("boot: ok\n".utf8).forEach(output.write(byte:))
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
        XCTAssertEqual(Array(buffer.prefix(max(0, count))), Array("boot: ok\n".utf8))
        XCTAssertEqual(capture.text, "boot: ok\n")
        XCTAssertNil(output.writeError)
    }

    func testOutputStopsWritingAfterAnErrorButKeepsCapturing() {
        let capture = ConsoleCapture()
        let output = ConsoleOutput(fd: -1, capture: capture)
        output.write(byte: 0x41)
        XCTAssertEqual(output.writeError, EBADF)
        output.write(byte: 0x42)
        XCTAssertEqual(capture.text, "AB")
    }

    func testCaptureKeepsTheLastBytes() {
        let capture = ConsoleCapture(capacity: 4)
        capture.append(contentsOf: Array("abcdef".utf8))
        XCTAssertEqual(capture.text, "cdef")
        XCTAssertEqual(capture.totalBytes, 6)
        capture.append(0x67)
        XCTAssertEqual(capture.text, "defg")
        capture.clear()
        XCTAssertEqual(capture.text, "")
    }
}
