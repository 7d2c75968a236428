import XCTest

/// The reference guests (stock Debian kernels under QEMU/TCG) reach the known
/// state the shadow tests inspect. These check the images, not swvmm.
final class ReferenceGuestTests: XCTestCase {
    func testKnownStateOn6_1() throws { try checkKnownState(series: "6.1") }
    func testKnownStateOn6_12() throws { try checkKnownState(series: "6.12") }

    private func checkKnownState(series: String) throws {
        let guest = try ReferenceGuest(series: series) // skips, saying why, without QEMU or images
        defer { guest.stop() }

        let uname = try guest.run("uname -r")
        XCTAssertEqual(uname.output.trimmingCharacters(in: .whitespacesAndNewlines),
                       guest.release)
        XCTAssertEqual(try guest.run("hostname").output, "swvmm-guest\n")
        XCTAssertEqual(try guest.run("grep -c ^processor /proc/cpuinfo").output, "2\n",
                       "the guest should see both vCPUs")

        let ps = try guest.run("ps -o pid,user,comm,args").output
        for n in 1...3 {
            XCTAssertTrue(ps.contains("swvmm-sleeper-\(n)  /usr/bin/swvmm-sleeper-\(n)"),
                          "swvmm-sleeper-\(n) missing from ps:\n\(ps)")
        }
        XCTAssertTrue(ps.split(separator: "\n").contains { $0.contains("swvmmtes") && $0.contains("swvmm-sleeper-3") },
                      "swvmm-sleeper-3 should run as swvmmtester:\n\(ps)")

        let lsmod = try guest.run("lsmod").output
        XCTAssertTrue(lsmod.split(separator: "\n").contains { $0.hasPrefix("dummy ") }, "dummy not loaded:\n\(lsmod)")

        let netstat = try guest.run("netstat -tln").output
        XCTAssertTrue(netstat.contains("0.0.0.0:8642"), "no IPv4 listener on 8642:\n\(netstat)")
        XCTAssertTrue(netstat.contains(":::8643"), "no IPv6 listener on 8643:\n\(netstat)")

        XCTAssertEqual(try guest.run("false").status, 1)
    }
}
