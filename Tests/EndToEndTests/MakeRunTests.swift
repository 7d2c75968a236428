import Foundation
import XCTest

/// `make run` as a newcomer uses it, on a terminal (a pseudo-terminal here):
/// it must end at the guest's shell on every machine (through the KVM host
/// where there is no VT-x/AMD-V), run what is typed, and Ctrl-A x must quit
/// with status 0, leaving no QEMU behind.
final class MakeRunTests: XCTestCase {
    func testMakeRunEndsAtAGuestShellThatRunsCommandsAndCtrlAXQuits() throws {
        try Swvmm.requireBinary()
        try KVMHost.requireAvailable()
        for image in ["bzImage-tiny", "initramfs.cpio.gz"] + (KVMHost.runsDirectly ? [] : ["bzImage-6.12", "kvm-host-initramfs.cpio.gz"]) {
            _ = try Swvmm.image(image)
        }
        // kvm-host.sh makes its temporary files (named on QEMU's command
        // line) under $TMPDIR: a directory of this test's own shows strays.
        let temporary = try ScratchDirectory()

        var master: Int32 = -1, replica: Int32 = -1
        var size = winsize(ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0)
        guard openpty(&master, &replica, nil, nil, &size) == 0 else {
            return XCTFail("openpty: \(String(cString: strerror(errno)))")
        }
        let terminal = FileHandle(fileDescriptor: replica, closeOnDealloc: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        // The binary under test instead of a release build made on the spot.
        process.arguments = ["--no-print-directory", "run", "SWVMM=\(Swvmm.binary.path)"]
        process.currentDirectoryURL = Swvmm.packageRoot
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": temporary.url.path, "TERM": "xterm"]) { $1 }
        process.standardInput = terminal
        process.standardOutput = terminal
        process.standardError = terminal
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let screen = TerminalReader(master: master)
        let start = Date()
        try process.run()
        try terminal.close()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            screen.close()
        }

        guard screen.wait(for: "swvmm-guest# ", timeout: 600) else {
            return XCTFail("no guest shell prompt in 600 s\n\(screen.text.suffix(3000))")
        }
        let toPrompt = Date().timeIntervalSince(start)
        usleep(500_000)  // let the shell settle into reading its line
        screen.type("echo $((6*7))\r")
        // A line "42": each terminal on the way (guest, L1, here) may add its "\r".
        XCTAssertTrue(screen.wait(for: "\n42\r", timeout: 60), "the guest shell did not answer 42\n\(screen.text.suffix(3000))")
        XCTAssertTrue(screen.wait(for: "swvmm-guest# ", timeout: 60, occurrence: 2), String(screen.text.suffix(3000)))

        let quitStart = Date()
        screen.type("\u{01}x")
        XCTAssertEqual(finished.wait(timeout: .now() + 120), .success, "make run did not end after Ctrl-A x\n\(screen.text.suffix(3000))")
        let quit = Date().timeIntervalSince(quitStart)
        guard !process.isRunning else { return }
        XCTAssertEqual(process.terminationReason, .exit, screen.text.suffix(3000).description)
        XCTAssertEqual(process.terminationStatus, 0, "make run after Ctrl-A x\n\(screen.text.suffix(3000))")
        XCTAssertTrue(screen.text.contains("Ctrl-A x"), "swvmm should say why it stopped\n\(screen.text.suffix(2000))")
        if !KVMHost.runsDirectly {
            XCTAssertTrue(screen.text.contains("kvm-host: no VT-x/AMD-V on this host: running in the KVM host"),
                          String(screen.text.prefix(3000)))
        }
        XCTAssertEqual(KVMHost.processes(mentioning: temporary.url.path), [], "QEMU or a helper outlived make run")
        print("MakeRunTests: guest shell prompt after \(String(format: "%.1f", toPrompt)) s, Ctrl-A x ended make run in \(String(format: "%.1f", quit)) s")
    }
}

/// Collects what a program prints on a pseudo-terminal (its master side),
/// and types on it.
final class TerminalReader: @unchecked Sendable {
    private let master: Int32
    private var data = Data()
    private let lock = NSLock()
    private var closed = false

    init(master: Int32) {
        self.master = master
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(master, &buffer, buffer.count)
                if count <= 0 { break }  // EIO once every replica descriptor is closed
                lock.lock(); data.append(contentsOf: buffer[0..<count]); lock.unlock()
            }
        }
        thread.start()
    }

    var text: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits until `fragment` has appeared `occurrence` times. Compares
    /// bytes: as Swift characters "\r\n" is one, which "\n42" would not match.
    func wait(for fragment: String, timeout: TimeInterval, occurrence: Int = 1) -> Bool {
        let needle = Data(fragment.utf8)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            lock.lock()
            var found = 0, from = data.startIndex
            while found < occurrence, let range = data.range(of: needle, in: from..<data.endIndex) {
                found += 1
                from = range.upperBound
            }
            lock.unlock()
            if found >= occurrence { return true }
            usleep(100_000)
        }
        return false
    }

    func type(_ keys: String) {
        let bytes = Array(keys.utf8)
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
    }

    func close() {
        lock.lock(); defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        Glibc.close(master)
    }
}
