import Foundation
import XCTest

/// The guest under a scenario stopped answering its console: it hung, as
/// QEMU/TCG guests with several vCPUs sometimes do on their own (PLATFORM.md).
struct GuestStoppedAnswering: Error, CustomStringConvertible {
    let description: String
}

/// A test case whose scenario runs once more, on a fresh guest, when the
/// guest under it is lost (its QEMU or KVM host died, or it hung) rather
/// than failed by swvmm. An attempt's failures are held until it ends: kept
/// when it ends any other way, printed and dropped when its guest was lost,
/// so a retry that passes leaves the test green and the loss is never
/// silent. The last attempt's failures always count.
class LostGuestRetryingTestCase: XCTestCase {
    private struct HeldFailure {
        let description: String
        let file: String
        let line: Int
        let expected: Bool
    }

    /// Failures of the attempt now running (nil: none is held, they count at once).
    private var heldFailures: [HeldFailure]?

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        if heldFailures != nil {
            heldFailures?.append(HeldFailure(description: description, file: filePath, line: lineNumber, expected: expected))
        } else {
            super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
        }
    }

    /// Runs `body` up to `attempts` times: again when it throws an error
    /// `lost` explains (a reason, printed), never after any other ending.
    func retryingLostGuests<T>(_ what: String, attempts: Int = 2, lost: (Error) -> String?,
                               _ body: () throws -> T) throws -> T {
        for attempt in 1 ..< max(attempts, 1) {
            heldFailures = []
            do {
                let value = try body()
                releaseHeldFailures()
                return value
            } catch {
                guard let reason = lost(error) else {
                    releaseHeldFailures()
                    throw error
                }
                let dropped = heldFailures ?? []
                heldFailures = nil
                print("\(what): the guest was lost (attempt \(attempt) of \(attempts)): \(reason)\n"
                      + dropped.map { "  failure of the lost attempt, not counted: \($0.description)" }.joined(separator: "\n")
                      + "\n\(what): running it once more on a fresh guest")
            }
        }
        return try body()
    }

    private func releaseHeldFailures() {
        let held = heldFailures ?? []
        heldFailures = nil
        for failure in held {
            super.recordFailure(withDescription: failure.description, inFile: failure.file, atLine: failure.line, expected: failure.expected)
        }
    }
}
