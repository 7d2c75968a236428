import XCTest

/// The parsers the shadow tool tests rely on, on output captured from procps
/// and psmisc (no guest needed): a parser that saw nothing would make the
/// guest comparisons pass vacuously.
final class ShadowToolParserTests: XCTestCase {
    func testPstreeParents() {
        let drawing = """
        init(1)-+-httpd(150)
                |-sh(158)---sleep(170)
                |-swvmm-heartbeat(148)-+-a(300)
                |                      `-b(301)---c(302)
                `-swvmm-sleeper-3(149)
        """
        XCTAssertEqual(ToolOutput.pstreeParents(drawing),
                       [150: 1, 158: 1, 170: 158, 148: 1, 300: 148, 301: 148, 302: 301, 149: 1])
    }

    func testUptimeMinutes() {
        XCTAssertEqual(ToolOutput.uptimeMinutes(" 23:46:25 up 1 min,  0 user,  load average: 1.19, 0.31, 0.11"), 1)
        XCTAssertEqual(ToolOutput.uptimeMinutes(" 10:00:00 up  1:05,  2 users,  load average: 0.00, 0.00, 0.00"), 65)
        XCTAssertEqual(ToolOutput.uptimeMinutes(" 10:00:00 up 2 days,  1:05,  0 users,  load average: 0.00"), 2 * 1440 + 65)
        XCTAssertEqual(ToolOutput.uptimeMinutes(" 10:00:00 up 3 days, 5 min,  0 users,  load average: 0.00"), 3 * 1440 + 5)
        XCTAssertNil(ToolOutput.uptimeMinutes("garbage"))
    }

    func testNetstatPortsAndDf() {
        let netstat = """
        Active Internet connections (only servers)
        Proto Recv-Q Send-Q Local Address           Foreign Address         State
        tcp        0      0 0.0.0.0:8642            0.0.0.0:*               LISTEN
        tcp6       0      0 :::8643                 :::*                    LISTEN
        """
        XCTAssertEqual(ToolOutput.listeningPorts(netstat), [8642, 8643])
        let df = """
        Filesystem     1K-blocks  Used Available Use% Mounted on
        rootfs            232480  2836    229644   2% /
        devtmpfs          232480     0    232480   0% /dev
        """
        let mounts = ToolOutput.dfMounts(df)
        XCTAssertEqual(mounts["/"]?.filesystem, "rootfs")
        XCTAssertEqual(mounts["/dev"]?.blocks, 232480)
        XCTAssertEqual(ToolOutput.memTotal("   total  used\nMem:   473164   29092\nSwap: 0 0\n"), 473164)
    }
}
