import Foundation
import XCTest

/// A client of the guest's serial console (QEMU `-serial unix:...`): types
/// commands into the shell and reads until a unique end marker.
final class SerialConsole {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(socketPath: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var connected: Int32 = -1
        while connected < 0 {
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw SerialConsoleError.io("socket: errno \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = Array(socketPath.utf8)
            guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SerialConsoleError.io("socket path too long") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in path.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc == 0 { connected = s; break }
            close(s)
            guard Date() < deadline else { throw SerialConsoleError.io("cannot connect to \(socketPath): errno \(errno)") }
            usleep(50_000)
        }
        fd = connected
    }

    deinit { close(fd) }

    /// Reads until `marker` appears in the output; returns everything read up
    /// to and including it (and drops it from the buffer).
    @discardableResult
    func read(until marker: String, timeout: TimeInterval) throws -> String {
        let needle = Array(marker.utf8)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let range = find(needle) {
                let text = String(decoding: buffer[..<range.upperBound], as: UTF8.self)
                buffer.removeSubrange(..<range.upperBound)
                return text
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw SerialConsoleError.timeout(marker: marker, tail: String(decoding: buffer.suffix(400), as: UTF8.self))
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining, 1) * 1000) + 1)
            if ready > 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw SerialConsoleError.io("the console closed") }
                buffer.append(contentsOf: chunk[..<n])
            }
        }
    }

    /// Types `command` and returns its output (the lines between the echoed
    /// command and a unique end marker). The marker is typed split in two
    /// (`E""ND-...`) so the shell's echo of the command never matches it.
    func run(_ command: String, timeout: TimeInterval = 30) throws -> String {
        let id = UUID().uuidString.prefix(8)
        try type("\(command); echo \"E\"\"ND-\(id)\"\n")
        let text = try read(until: "END-\(id)", timeout: timeout)
        if ProcessInfo.processInfo.environment["SWVMM_CONSOLE_DEBUG"] != nil { print("CONSOLE<<\(text.debugDescription)>>") }
        // Drop the echoed command line and the marker.
        // "\r\n" is one Character in Swift: split on the bytes.
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0.filter { $0 != UInt8(ascii: "\r") }, as: UTF8.self) }
        if let echo = lines.lastIndex(where: { $0.contains("ND-\(id)\"") }) { lines.removeSubrange(...echo) }
        if !lines.isEmpty { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    func type(_ text: String) throws {
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SerialConsoleError.io("send: errno \(errno)") }
            done += n
        }
    }

    private func find(_ needle: [UInt8]) -> Range<Int>? {
        guard buffer.count >= needle.count, !needle.isEmpty else { return nil }
        for i in 0 ... buffer.count - needle.count where buffer[i] == needle[0] {
            if Array(buffer[i ..< i + needle.count]) == needle { return i ..< i + needle.count }
        }
        return nil
    }
}

enum SerialConsoleError: Error, CustomStringConvertible {
    case io(String)
    case timeout(marker: String, tail: String)

    /// Whether the console's other end is gone (the guest's QEMU exited).
    var meansTheGuestIsGone: Bool {
        guard case .io(let text) = self else { return false }
        return text == "the console closed" || text == "send: errno \(EPIPE)"
    }

    var description: String {
        switch self {
        case let .io(text): return "serial console: \(text)"
        case let .timeout(marker, tail): return "serial console: no '\(marker)' in time; last output: \(tail)"
        }
    }
}
