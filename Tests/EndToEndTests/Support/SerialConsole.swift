import Foundation
import Guest
import XCTest

/// A client of the guest's serial console (QEMU `-serial unix:...`): types
/// commands into the shell and reads until a unique end marker. The
/// product's `SerialConsoleClient` does the reading and typing; this adds the
/// tests' command protocol and error type.
final class SerialConsole {
    private let console: SerialConsoleClient

    init(socketPath: String, timeout: TimeInterval) throws {
        console = try Self.mapped { () throws(SerialConsoleClientError) in try SerialConsoleClient(socketPath: socketPath, timeout: .seconds(timeout)) }
    }

    /// Reads until `marker` appears in the output; returns everything read up
    /// to and including it (and drops it from the buffer).
    @discardableResult
    func read(until marker: String, timeout: TimeInterval) throws -> String {
        String(decoding: try Self.mapped { () throws(SerialConsoleClientError) in try console.read(until: marker, timeout: .seconds(timeout)) },
               as: UTF8.self)
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
        try Self.mapped { () throws(SerialConsoleClientError) in try console.type(text) }
    }

    /// `body`, its console errors as the tests' own.
    private static func mapped<T>(_ body: () throws(SerialConsoleClientError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            switch error {
            case .closed: throw SerialConsoleError.io("the console closed")
            case let .timeout(marker, tail): throw SerialConsoleError.timeout(marker: marker, tail: tail)
            default: throw SerialConsoleError.io("\(error)")
            }
        }
    }
}

enum SerialConsoleError: Error, CustomStringConvertible {
    case io(String)
    case timeout(marker: String, tail: String)

    /// Whether the console's other end is gone (the guest's QEMU exited).
    var meansTheGuestIsGone: Bool {
        guard case .io(let text) = self else { return false }
        return text == "the console closed"
    }

    var description: String {
        switch self {
        case let .io(text): return "serial console: \(text)"
        case let .timeout(marker, tail): return "serial console: no '\(marker)' in time; last output: \(tail)"
        }
    }
}
