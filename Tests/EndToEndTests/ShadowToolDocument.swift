/// docs/tools.md, written from the rows the end-to-end test runs, so the
/// table a user reads is the table that is checked.
enum ShadowToolDocument {
    static func markdown(_ rows: [ShadowToolRow]) -> String {
        var text = """
        # Host tools under `swvmm shadow`

        Generated from `Tests/EndToEndTests/ShadowToolTable.swift` (do not edit by hand:
        `SWVMM_WRITE_TOOLS_DOC=1 swift test --filter ShadowToolParserTests` rewrites it;
        that test fails when the two differ). Each row runs as
        `swvmm shadow --gdb ADDR [options] -- COMMAND` against the reference guest
        (images/reference-guest.sh) on Debian 6.1 and 6.12, one guest boot per kernel,
        and is compared with the ground truth typed on the guest's console (busybox).
        A host-only marker process must never appear in any output.
        `{pid:NAME}` is the guest pid of process NAME.

        | Command | Works | Ground truth (guest console) | Compared | Reads in the guest | Known differences |
        | --- | --- | --- | --- | --- | --- |

        """
        for row in rows {
            let works: String
            var differences = row.differences
            switch row.support {
            case .works: works = "yes"
            case .refused(let why, _): works = "refused"; differences = join(why, differences)
            case .hostFacts(let why): works = "no (not run)"; differences = join("would show host facts: " + why, differences)
            }
            let cells = ["`\(row.commandLine)`", works, "`\(row.groundTruth)`", row.comparison.description, row.needs, differences]
            text += "| " + cells.map(escape).joined(separator: " | ") + " |\n"
        }
        text += """

        ## Known differences that apply to every tool

        - Time: `clock_gettime`, `gettimeofday` and `time` are answered by the host's vDSO
          without a system call, so clocks, `START`/`STIME` columns and "now" are the host's;
          uptimes and boot times are the guest's.
        - CPU: `getcpu` (vDSO) and the `cpuid` instruction run on the host's CPU: `lscpu`'s
          vendor, family, flags and caches describe the host, its CPU count the guest.
        - Network: sockets other than netlink are the inspector's own (the host's), but the
          socket ioctls that describe the machine (interfaces, ARP, routes: `SIOCGIF*`,
          `SIOCGARP`, `SIOCGIFCONF`) are answered by the guest on a socket S opens; the ones
          that change it are refused (EOPNOTSUPP). Netlink sockets (NETLINK_ROUTE,
          NETLINK_SOCK_DIAG) are sockets of S's in the guest: reads to the guest kernel
          only (RTM_GET* requests, sock_diag dumps); changes (`ip addr add`, `ip link set`,
          SOCK_DESTROY) are refused (EPERM), other netlink protocols too (EPROTONOSUPPORT).
          A receive never waits in the guest for more than 2 s (then EAGAIN).
        - Paths are routed lexically: `..` below a guest path (`--guest-path /var/www`, then
          `/var/www/..`) is the host's `/var`.
        - Shells: a guest file redirected onto a low fd (`cmd < /proc/x`) becomes a sealed
          local copy of its contents, read at the redirection (at most 16 MiB; a directory
          cannot be redirected). Redirections to local files (`2>/dev/null`) are local.

        """
        return text
    }

    private static func join(_ a: String, _ b: String) -> String { b.isEmpty ? a : a + "; " + b }

    private static func escape(_ cell: String) -> String {
        cell.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
