import Foundation
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
        XCTAssertEqual(ShadowToolTable.listeningPorts.apply(netstat), ["8642", "8643"])
        let ss = """
        State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess
        LISTEN 0      0            0.0.0.0:8642      0.0.0.0:*
        LISTEN 0      0                  *:8643            *:*
        """
        XCTAssertEqual(ShadowToolTable.listeningPorts.apply(ss), ["8642", "8643"])
        let df = """
        Filesystem     1K-blocks  Used Available Use% Mounted on
        rootfs            232480  2836    229644   2% /
        devtmpfs          232480     0    232480   0% /dev
        """
        let mounts = ToolOutput.dfMounts(df)
        XCTAssertEqual(mounts["/"]?.filesystem, "rootfs")
        XCTAssertEqual(mounts["/dev"]?.blocks, 232480)
        XCTAssertEqual(ShadowToolTable.memTotal.apply("   total  used\nMem:   473164   29092\nSwap: 0 0\n"), ["473164"])
    }

    /// The projections of the table's rows, on captured procps, lsof and /proc output.
    func testTableProjections() {
        let rows = Dictionary(ShadowToolTable.rows.map { ($0.commandLine, $0) }, uniquingKeysWith: { a, _ in a })
        func projections(_ commandLine: String) -> (tool: ToolProjection, truth: ToolProjection)? {
            switch rows[commandLine]?.comparison {
            case .equal(let t, let u)?, .sameSet(let t, let u)?, .coversStable(let t, let u)?: return (t, u ?? t)
            default: return nil
            }
        }
        let pmap = projections("pmap {pid:swvmm-sleeper-1}")
        XCTAssertEqual(pmap?.tool.apply("147:   /usr/bin/x\n0000000000400000      4K r---- x\n00007ffc05cd4000    132K rw---   [ stack ]\n total   980K\n"),
                       ["400000", "7ffc05cd4000"])
        XCTAssertEqual(pmap?.truth.apply("00400000-00401000 r--p 00000000 00:02 245 /x\n7ffc05cd4000-7ffc05cf5000 rw-p 0 0:0 0 [stack]\n"),
                       ["400000", "7ffc05cd4000"])
        let lsof = projections("lsof -p {pid:swvmm-sleeper-1}")
        XCTAssertEqual(lsof?.tool.apply("""
            COMMAND   PID USER   FD   TYPE DEVICE   SIZE NODE NAME
            swvmm-sle 147 root  cwd    DIR    0,2    320    1 /
            swvmm-sle 147 root    0r   CHR    1,3           4 /dev/null
            swvmm-sle 147 root    1u   CHR    5,1           3 /dev/console
            """), ["/dev/null", "/dev/console"])
        let snmp = projections("netstat -s")
        XCTAssertEqual(snmp?.truth.apply("Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens\nTcp: 1 200 120000 -1 3 7 0\n"), ["7"])
        XCTAssertEqual(snmp?.tool.apply("Tcp:\n    3 active connection openings\n    7 passive connection openings\n"), ["7"])
        XCTAssertEqual(projections("lspci -n")?.tool.apply("00:00.0 0600: 8086:1237 (rev 02)\n00:01.0 0601: 8086:7000\n"),
                       ["00:00.0 8086:1237", "00:01.0 8086:7000"])
        let who = projections("w")
        XCTAssertEqual(who?.tool.apply(" 14:58:47 up 2 min,  0 user,  load average: 1.39\nUSER     TTY      FROM\nroot pts/0 -\n"), ["root"])
    }

    /// iproute2's and busybox's `ip` (captured from the reference guest) project to the same facts.
    func testIpProjections() {
        let iproute2 = """
        1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
            link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
            inet 127.0.0.1/8 scope host lo
               valid_lft forever preferred_lft forever
            inet6 ::1/128 scope host
               valid_lft forever preferred_lft forever
        2: dummy0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default qlen 1000
            link/ether 2e:c2:d5:70:29:c9 brd ff:ff:ff:ff:ff:ff
        """
        let busybox = """
        1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000
            link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
            inet 127.0.0.1/8 scope host lo
               valid_lft forever preferred_lft forever
            inet6 ::1/128 scope host
               valid_lft forever preferred_lft forever
        2: dummy0: <BROADCAST,NOARP> mtu 1500 qdisc noop qlen 1000
            link/ether 2e:c2:d5:70:29:c9 brd ff:ff:ff:ff:ff:ff
        """
        let facts = ShadowToolTable.interfaceFacts.apply(iproute2)
        XCTAssertEqual(facts, ["1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536", "link/loopback 00:00:00:00:00:00", "inet 127.0.0.1/8",
                               "inet6 ::1/128", "2: dummy0: <BROADCAST,NOARP> mtu 1500", "link/ether 2e:c2:d5:70:29:c9"])
        XCTAssertEqual(ShadowToolTable.interfaceFacts.apply(busybox), facts)
        let routes = ShadowToolTable.routes.apply("""
        local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1
        broadcast 127.255.255.255 dev lo proto kernel scope link src 127.0.0.1
        default via 192.0.2.1 dev eth0 proto static
        """)
        XCTAssertEqual(routes, ["local 127.0.0.0/8 lo 127.0.0.1", "broadcast 127.255.255.255 lo 127.0.0.1", "default via 192.0.2.1 eth0"])
        XCTAssertEqual(ShadowToolTable.routes.apply("""
        local 127.0.0.0/8 dev lo scope host  src 127.0.0.1
        broadcast 127.255.255.255 dev lo scope link  src 127.0.0.1
        default via 192.0.2.1 dev eth0
        """), routes, "busybox prints no proto")
    }

    /// docs/tools.md is the table the test runs (SWVMM_WRITE_TOOLS_DOC=1 rewrites it).
    func testToolsDocumentIsTheTable() throws {
        let url = Swvmm.packageRoot.appendingPathComponent("docs/tools.md")
        let rendered = ShadowToolDocument.markdown(ShadowToolTable.rows)
        if ProcessInfo.processInfo.environment["SWVMM_WRITE_TOOLS_DOC"] == "1" {
            try rendered.write(to: url, atomically: true, encoding: .utf8)
        }
        let written = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(written, rendered, "docs/tools.md is not the table in ShadowToolTable.swift: run SWVMM_WRITE_TOOLS_DOC=1 swift test --filter ShadowToolParserTests")
    }
}
