import XCTest

/// The retry of scenarios whose guest was lost (Support/LostGuestRetry.swift):
/// no guest here, the losses are thrown by the bodies.
final class LostGuestRetryTests: LostGuestRetryingTestCase {
    private struct Unrelated: Error {}

    private static func reason(_ error: Error) -> String? {
        error is GuestStoppedAnswering ? "\(error)" : nil
    }

    /// A failure recorded by an attempt whose guest was then lost does not
    /// count: were it counted, this test would fail.
    func testALostAttemptsFailuresAreDroppedAndTheScenarioRunsAgain() throws {
        var attempts = 0
        let value = try retryingLostGuests("retry test", lost: Self.reason) { () throws -> Int in
            attempts += 1
            if attempts == 1 {
                XCTFail("a failure of the attempt whose guest is lost next (expected to be dropped)")
                throw GuestStoppedAnswering(description: "the first guest hung")
            }
            return 42
        }
        XCTAssertEqual(attempts, 2)
        XCTAssertEqual(value, 42)
    }

    func testAnyOtherErrorEndsTheScenarioAtOnce() {
        var attempts = 0
        XCTAssertThrowsError(try retryingLostGuests("retry test", attempts: 3, lost: Self.reason) { () throws -> Void in
            attempts += 1
            throw Unrelated()
        }) { XCTAssertTrue($0 is Unrelated) }
        XCTAssertEqual(attempts, 1)
    }

    func testTheLastAttemptsLossIsThrown() {
        var attempts = 0
        XCTAssertThrowsError(try retryingLostGuests("retry test", attempts: 2, lost: Self.reason) { () throws -> Void in
            attempts += 1
            throw GuestStoppedAnswering(description: "hung again")
        }) { XCTAssertTrue($0 is GuestStoppedAnswering) }
        XCTAssertEqual(attempts, 2)
    }
}
