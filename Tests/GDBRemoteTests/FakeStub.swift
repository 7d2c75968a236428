import Foundation
import Glibc
@testable import GDBRemote

/// The stub side of a socketpair, on its own thread: answers the client's
/// handshake like a one-vCPU QEMU in no-ack mode, then hands every later
/// command to `onCommand` with a way to send raw bytes. A fake because
/// QEMU cannot be made to flood or misbehave on purpose.
final class FakeStub: @unchecked Sendable {
    let fd: Int32
    private let onCommand: @Sendable (String, FakeStub) -> Void
    private var buffer: [UInt8] = []
    private var noAck = false
    /// Set to stop a flood loop in `onCommand`.
    let stopped = NSLock()
    private var stopFlag = false
    var isStopped: Bool { stopped.withLock { stopFlag } }

    /// The registers `GDBRemoteTarget` needs, all 64-bit, numbered in order.
    static let shadowRegisters = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
                                  "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
                                  "fs_base", "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "efer"]
    static let targetXML = "<target><feature name=\"core\">"
        + shadowRegisters.enumerated().map { "<reg name=\"\($0.element)\" bitsize=\"64\" regnum=\"\($0.offset)\"/>" }.joined()
        + "</feature></target>"

    init(fd: Int32, onCommand: @escaping @Sendable (String, FakeStub) -> Void) {
        self.fd = fd
        self.onCommand = onCommand
    }

    private let finished = DispatchSemaphore(value: 0)

    func start() {
        Thread {
            self.serve()
            self.finished.signal()
        }.start()
    }

    /// Waits until the stub's thread has ended (the client closed its end).
    func join() { finished.wait() }

    func stop() { stopped.withLock { stopFlag = true } }

    /// Writes `bytes` whole (blocking), false once the client is gone.
    @discardableResult
    func sendRaw(_ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    func reply(_ body: String) {
        sendRaw((noAck ? [] : [UInt8(ascii: "+")]) + Packet.encode(Array(body.utf8)))
    }

    private func serve() {
        while !isStopped, let command = nextCommand() {
            switch command {
            case let c where c.hasPrefix("qSupported"):
                reply("PacketSize=1000;QStartNoAckMode+;qXfer:features:read+")
            case "QStartNoAckMode":
                reply("OK")
                noAck = true
            case "?": reply("T05thread:01;")
            case let c where c.hasPrefix("qXfer:features:read:target.xml:"): reply("l" + Self.targetXML)
            case "qfThreadInfo": reply("m1")
            case "qsThreadInfo": reply("l")
            case "vCont?": reply("vCont;c;C;s;S")
            default: onCommand(command, self)
            }
        }
    }

    /// The next packet's body, skipping acks; nil when the client closed.
    private func nextCommand() -> String? {
        while true {
            if let start = buffer.firstIndex(of: UInt8(ascii: "$")),
               let hash = buffer[start...].firstIndex(of: UInt8(ascii: "#")), buffer.count >= hash + 3 {
                let body = String(decoding: buffer[(start + 1)..<hash], as: UTF8.self)
                buffer.removeFirst(hash + 3)
                return body
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }
}
