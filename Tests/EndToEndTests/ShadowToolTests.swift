import Foundation
import XCTest

/// Unmodified host tools run through `swvmm shadow` (the rows of
/// ShadowToolTable.swift, also docs/tools.md) report the reference guest's
/// state (ground truth from its console), on Debian 6.1 and 6.12, and a
/// host-only marker process never shows. One guest boot per kernel serves
/// every row, then the faults (ShadowFaultChecks.swift), the last of which
/// kills the guest.
final class ShadowToolTests: LostGuestRetryingTestCase {
    var guest: ReferenceGuest?
    var marker: HostMarker?

    override func tearDown() {
        stopGuestAndMarker()
        super.tearDown()
    }

    func testHostToolsAndFaultsOnDebian6_1() throws { try scenarioRetryingLostGuests(series: "6.1") }
    func testHostToolsAndFaultsOnDebian6_12() throws { try scenarioRetryingLostGuests(series: "6.12") }

    /// The scenario, once more on a fresh guest should the guest's QEMU exit
    /// or the guest stop answering its console while the rows run (both seen
    /// on the 6.12 guest, cause not yet known); the lost guest's last console
    /// lines are printed, so a loss is never silent.
    private func scenarioRetryingLostGuests(series: String) throws {
        try retryingLostGuests("[\(series)] ShadowToolTests", lost: { error in
            let gone = (error as? SerialConsoleError)?.meansTheGuestIsGone == true
            guard gone || error is GuestStoppedAnswering else { return nil }
            return "\(error); its console's last lines:\n\(guest?.consoleTail() ?? "(no guest)")"
        }) {
            stopGuestAndMarker()
            try scenario(series: series)
        }
    }

    private func stopGuestAndMarker() {
        guest?.stop()
        guest = nil
        marker?.stop()
        marker = nil
    }

    private func scenario(series: String) throws {
        try Swvmm.requireBinary()
        let clock = ContinuousClock()
        let start = clock.now
        let guest = try ReferenceGuest.booting(series: series)
        self.guest = guest
        let marker = try HostMarker()
        self.marker = marker
        print("[\(series)] guest booted in \(clock.now - start)")
        XCTAssertTrue(try runOnHost(["ps", "-e", "-o", "pid,comm"]).contains(marker.name),
                      "the marker \(marker.name) is not in the host's own ps: the absence checks would prove nothing")

        // A memo directory of this scenario's own: each tool's first run trains, the second uses it.
        let memoHome = NSTemporaryDirectory() + "swvmm-tool-memo-\(getpid())-\(series)"
        try FileManager.default.createDirectory(atPath: memoHome, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: memoHome) }
        setenv("XDG_CACHE_HOME", memoHome, 1)
        defer { unsetenv("XDG_CACHE_HOME") }
        let tools = ShadowToolChecks(guest: guest, marker: marker, series: series) { arguments in
            try Swvmm.run(["shadow", "--gdb", guest.gdbAddress] + arguments, timeout: 120)
        }
        let shadowPID = try tools.shadowPID()
        let baseline = try guest.fds(of: shadowPID)
        print("[\(series)] S pid \(shadowPID), fds \(baseline)")
        try tools.checkAll()
        print("[\(series)] tools checked at \(clock.now - start)")

        var faults = ShadowFaultChecks(guest: guest, series: series, shadowPID: shadowPID, baselineFds: baseline)
        try faults.checkAll()
        print("[\(series)] faults checked at \(clock.now - start)")
    }
}

/// A guest the tool checks read their ground truth from: its console and its kernel release.
protocol ShadowToolGuest: GuestConsole {
    var release: String { get }
}

extension ReferenceGuest: ShadowToolGuest {}

/// A process on the inspectors' side that the guest does not have: its name
/// and pid must never show in a tool's output.
protocol MarkerProcess {
    var name: String { get }
    var pid: Int32 { get }
}

extension HostMarker: MarkerProcess {}

/// The tool checks on one guest, through one target (a gdbstub with
/// `--gdb`, a swvmm VM with `--vm`): the same table for both.
struct ShadowToolChecks {
    let guest: any ShadowToolGuest
    let marker: any MarkerProcess
    let series: String
    /// Runs `swvmm shadow TARGET` with these further arguments (options, `--`, the command).
    let run: ([String]) throws -> Swvmm.Result

    /// `swvmm shadow TARGET -- arguments`, which must succeed; its stdout.
    @discardableResult
    func shadow(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try shadowRun(arguments, file: file, line: line).stdout
    }

    /// `swvmm shadow TARGET [options] -- arguments`: it must end cleanly, with
    /// `expectStatus` (nil: any), and never show the host marker.
    func shadowRun(_ arguments: [String], options: [String] = [], verbose: Bool = false, expectStatus: Int32? = 0,
                   file: StaticString = #filePath, line: UInt = #line) throws -> Swvmm.Result {
        let result = try run((verbose ? ["--verbose"] : []) + options + ["--"] + arguments)
        Swvmm.assertEndedCleanly(result, file: file, line: line)
        if let expectStatus { XCTAssertEqual(result.status, expectStatus, result.summary, file: file, line: line) }
        XCTAssertFalse(result.stdout.contains(marker.name), "host marker in the output of \(arguments)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains(marker.name), "host marker in stderr of \(arguments)", file: file, line: line)
        // With --verbose, swvmm says how the calls were placed.
        let placed = result.stderrLines.last { $0.hasPrefix("swvmm: this run: ") }.map { "; " + $0.dropFirst("swvmm: this run: ".count) } ?? ""
        print("[\(series)] \((options + arguments).joined(separator: " ")): \(String(format: "%.2f", result.seconds)) s, status \(result.status)\(placed)")
        return result
    }

    /// S's pid, as `--verbose` reports it (built or reused).
    func shadowPID() throws -> Int {
        let text = try shadowRun(["hostname"], verbose: true).stderr
        guard let range = text.range(of: "shadow process pid "),
              let pid = Int(text[range.upperBound...].prefix { $0.isNumber }) else {
            throw XCTSkip("no 'shadow process pid' in --verbose output: \(text)")
        }
        XCTAssertTrue(try guest.processTable()[pid] != nil, "S (\(pid)) is not a guest process")
        return pid
    }

    /// Every row of the tool table (ShadowToolTable.swift).
    func checkAll() throws {
        try checkTable()
    }

    /// `ps -e -o pid,comm`: the pid set and names of the guest's processes.
    func checkPs() throws {
        let before = try guest.psComm()
        let host = ToolOutput.pidTable(try shadow(["ps", "-e", "-o", "pid,comm"]))
        let after = try guest.psComm()
        let stable = Set(before.keys).intersection(after.keys)
        XCTAssertFalse(stable.isEmpty)
        XCTAssertEqual(stable.subtracting(host.keys), [], "[\(series)] guest pids ps did not list")
        // Names: busybox cuts comm to 15 characters, procps does not (kernel
        // threads' full names); kworkers rename themselves after the work
        // queue they last ran, so only names stable across both listings count.
        for pid in stable where before[pid] == after[pid] && !(before[pid]!.hasPrefix("kworker/")) {
            let expected = before[pid]!
            XCTAssertTrue(host[pid].map { $0.hasPrefix(expected.prefix(15)) } ?? false,
                          "[\(series)] pid \(pid): ps says \(host[pid] ?? "nothing"), the console \(expected)")
        }
        for name in ["swvmm-sleeper-1", "swvmm-sleeper-2", "swvmm-sleeper-3", "swvmm-heartbeat", "httpd"] {
            XCTAssertTrue(host.values.contains(name), "[\(series)] ps lists no \(name)")
        }
    }

    /// `ps aux`: users from the guest's /etc/passwd (swvmmtester, uid 4242, only there).
    func checkPsAux() throws {
        XCTAssertNil(getpwuid(4242), "the host has uid 4242: the user-name check would prove nothing")
        let passwd = try guest.text("grep '^swvmmtester:' /etc/passwd")
        XCTAssertTrue(passwd.contains(":4242:"), passwd)
        let users = ToolOutput.pidTable(try guest.text("ps -o pid,user"))
        let sleeper3 = try guest.text("pidof swvmm-sleeper-3").trimmingCharacters(in: .whitespacesAndNewlines)
        let uid = try guest.text("stat -c %u /proc/\(sleeper3)").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(uid, "4242")
        var hostUsers: [Int: String] = [:]
        for line in ToolOutput.lines(try shadow(["ps", "aux"])).dropFirst() {
            let f = ToolOutput.fields(line)
            if f.count > 2, let pid = Int(f[1]) { hostUsers[pid] = String(f[0]) }
        }
        guard let pid = Int(sleeper3) else { return XCTFail("no pid for swvmm-sleeper-3: \(sleeper3)") }
        // procps shows at most 8 characters of a user name ("swvmmte+"); it
        // would print 4242 if the name came from the host's /etc/passwd.
        XCTAssertTrue(["swvmmtester", "swvmmte+"].contains(hostUsers[pid] ?? ""), "[\(series)] user of sleeper-3: \(hostUsers[pid] ?? "none")")
        for (pid, user) in users {
            guard let hostUser = hostUsers[pid] else { continue }   // transient console processes
            XCTAssertEqual(hostUser.prefix(7), user.prefix(7), "[\(series)] user of pid \(pid)")
        }
    }

    /// `pstree -p`: each guest process under its parent (ppid from /proc/PID/stat).
    func checkPstree() throws {
        let before = try guest.processTable()
        let parents = ToolOutput.pstreeParents(try shadow(["pstree", "-p"]))
        let after = try guest.processTable()
        // The tree pstree draws from init: the stable processes descending from 1.
        let stable = before.filter { after[$0.key] == $0.value }
        func descendsFromInit(_ pid: Int) -> Bool {
            var p = pid, steps = 0
            while let parent = stable[p], steps < 64 { if parent == 1 { return true }; p = parent; steps += 1 }
            return false
        }
        let tree = stable.keys.filter(descendsFromInit)
        XCTAssertFalse(tree.isEmpty)
        for pid in tree { XCTAssertEqual(parents[pid], stable[pid], "[\(series)] parent of \(pid) in pstree") }
        for name in ["swvmm-sleeper-1", "swvmm-sleeper-2", "swvmm-sleeper-3", "httpd"] {
            for pid in try guest.text("pidof \(name)").split(separator: " ").compactMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                XCTAssertEqual(parents[pid], 1, "[\(series)] \(name) (\(pid)) is not a child of init(1) in pstree")
            }
        }
    }

    /// `uname -a`: the guest's.
    func checkUname() throws {
        let version = try guest.text("uname -v").trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = ToolOutput.fields(try shadow(["uname", "-a"]))
        XCTAssertEqual(fields.count > 2 ? [String(fields[0]), String(fields[1]), String(fields[2])] : [],
                       ["Linux", "swvmm-guest", guest.release], "[\(series)] uname -a")
        XCTAssertTrue(fields.joined(separator: " ").contains(version), "[\(series)] uname -a lacks the guest's version \(version)")
    }

    /// `uptime`: the guest's figures.
    func checkUptime() throws {
        // uptime prints whole minutes of /proc/uptime: bracketed by readings
        // on the console just before and after, it can only be between them.
        func consoleUptime() throws -> Double {
            Double(try guest.text("cat /proc/uptime").split(separator: " ").first ?? "") ?? -1
        }
        let before = try consoleUptime()
        let output = try shadow(["uptime"])
        let after = try consoleUptime()
        let minutes = ToolOutput.uptimeMinutes(output)
        XCTAssertNotNil(minutes, output)
        if let minutes {
            XCTAssertTrue(Int(before / 60) <= minutes && minutes <= Int(after / 60),
                          "[\(series)] uptime says \(minutes) min, the guest was up \(before)...\(after) s")
        }
    }

    /// `cat /proc/cpuinfo`: the guest's 2 vCPUs and their model (TCG's, not the host's).
    func checkCpuinfo() throws {
        let output = try shadow(["cat", "/proc/cpuinfo"])
        let count = try guest.text("grep -c ^processor /proc/cpuinfo").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertGreaterThanOrEqual(Int(count) ?? 0, 2, "the guests have 2 or more vCPUs")
        XCTAssertEqual(ToolOutput.lines(output).filter { $0.hasPrefix("processor") }.count, Int(count), "[\(series)] cpuinfo")
        let models = Set(ToolOutput.lines(try guest.text("grep '^model name' /proc/cpuinfo")).map { String($0) })
        XCTAssertEqual(Set(ToolOutput.lines(output).filter { $0.hasPrefix("model name") }.map { String($0) }), models)
    }

    /// `ls /proc`: the pid set.
    func checkLsProc() throws {
        func consolePids() throws -> Set<Int> {
            ToolOutput.numericLines(try guest.text("for d in /proc/[0-9]*; do echo ${d#/proc/}; done"))
        }
        let before = try consolePids()
        let listed = ToolOutput.numericLines(try shadow(["ls", "/proc"]))
        let after = try consolePids()
        XCTAssertEqual(before.intersection(after).subtracting(listed), [], "[\(series)] ls /proc misses guest pids")
        if !before.union(after).contains(Int(marker.pid)) {
            XCTAssertFalse(listed.contains(Int(marker.pid)), "[\(series)] ls /proc lists the host marker's pid")
        }
    }

    /// `df`: the guest's mounts (rootfs on /), sizes as the guest's statfs gives them.
    func checkDf() throws {
        let mounts = try guest.text("cat /proc/mounts")
        var consoleMounts: [String: String] = [:]
        for line in ToolOutput.lines(mounts) {
            let f = ToolOutput.fields(line)
            if f.count >= 2 { consoleMounts[String(f[1])] = String(f[0]) }
        }
        let consoleDf = ToolOutput.dfMounts(try guest.text("df"))
        let df = ToolOutput.dfMounts(try shadow(["df"]))
        XCTAssertEqual(df["/"]?.filesystem, consoleMounts["/"], "[\(series)] df's /")
        XCTAssertEqual(consoleMounts["/"], "rootfs")
        for (point, entry) in df {
            XCTAssertEqual(consoleMounts[point], entry.filesystem, "[\(series)] df lists \(point) on \(entry.filesystem)")
            if let expected = consoleDf[point] { XCTAssertEqual(entry.blocks, expected.blocks, "[\(series)] size of \(point)") }
        }
    }
}
