import Foundation
import XCTest

/// Shadow context's bad input and faults, on a booted reference guest: each gives a
/// clear message and a non-zero status, leaves no inspector or swvmm process
/// behind, the guest running, and S holding only the fds it had before.
/// The last check kills the guest (QEMU) itself.
struct ShadowFaultChecks {
    let guest: ReferenceGuest
    let series: String
    var shadowPID: Int
    var baselineFds: [String]

    init(guest: ReferenceGuest, series: String, shadowPID: Int, baselineFds: [String]) {
        self.guest = guest
        self.series = series
        self.shadowPID = shadowPID
        self.baselineFds = baselineFds
    }

    mutating func checkAll() throws {
        try unknownCommand()
        try missingGdbstub()
        try writeWithoutAllowWrites()
        try machineCallsWithoutAllowWrites()
        try guestTimePassesWhileTheCommandSleeps()
        try inspectorKilled()
        try shadowKilled()
        try sameSocketOtherSpellingThenStop()
        try gdbstubDies()
    }

    /// A token no other process has, to find strays by command line.
    private func token() -> String { "swvmm-fault-\(UUID().uuidString.prefix(8))" }

    private func shadow(_ arguments: [String], timeout: TimeInterval = 60) throws -> Swvmm.Result {
        try Swvmm.run(["shadow", "--gdb", guest.gdbAddress, "--"] + arguments, timeout: timeout)
    }

    /// What every fault must leave: an ended swvmm with a message and a
    /// failure status, no process carrying `token`, and (when the guest
    /// lives) a console that answers and S with its fds as before.
    private func assertClean(_ result: Swvmm.Result, token: String, message: [String], guestAlive: Bool = true,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertFalse(result.timedOut, "[\(series)] \(result.summary)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), "[\(series)] \(result.summary)", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "[\(series)] \(result.summary)", file: file, line: line)
        for word in message {
            XCTAssertTrue(result.stderr.contains(word), "[\(series)] no '\(word)' in the message\n\(result.summary)", file: file, line: line)
        }
        // The inspector is reaped with swvmm; give a SIGKILLed one a moment.
        var strays = hostProcesses(containing: token)
        for _ in 0 ..< 20 where !strays.isEmpty { usleep(100_000); strays = hostProcesses(containing: token) }
        XCTAssertTrue(strays.isEmpty, "[\(series)] processes left behind: \(strays)", file: file, line: line)
        guard guestAlive else { return }
        XCTAssertTrue(guest.answers(), "[\(series)] the guest's console does not answer", file: file, line: line)
        XCTAssertEqual(try guest.fds(of: shadowPID), baselineFds, "[\(series)] fds of S (\(shadowPID))", file: file, line: line)
    }

    /// An unknown COMMAND: swvmm says it cannot run it.
    func unknownCommand() throws {
        let name = token()
        let result = try shadow([name, "arg"])
        print("[\(series)] unknown command: status \(result.status), \(result.stderrLines.last ?? "")")
        try assertClean(result, token: name, message: ["cannot run", name])
    }

    /// A gdbstub socket that is not there.
    func missingGdbstub() throws {
        let tag = token()
        let path = guest.directory.appendingPathComponent("\(tag).sock").path
        let result = try Swvmm.run(["shadow", "--gdb", "unix:" + path, "--", "sh", "-c", ": \(tag)"], timeout: 60)
        print("[\(series)] missing gdbstub: status \(result.status), \(result.stderrLines.last ?? "")")
        try assertClean(result, token: tag, message: [path])
    }

    /// Writing guest files without --allow-writes: EROFS, the guest unchanged.
    func writeWithoutAllowWrites() throws {
        let mtime = try guest.text("stat -c %Y /etc/passwd")
        let tag = token()
        let echo = try shadow(["sh", "-c", "echo hacked > /proc/sys/kernel/hostname && : \(tag)"])
        print("[\(series)] write hostname: status \(echo.status), \(echo.stderrLines.last ?? "")")
        try assertClean(echo, token: tag, message: ["Read-only file system"])
        let touch = try shadow(["touch", "/etc/passwd"])
        try assertClean(touch, token: tag, message: ["Read-only file system"])
        XCTAssertEqual(try guest.text("hostname").trimmingCharacters(in: .whitespacesAndNewlines), "swvmm-guest")
        XCTAssertEqual(try guest.text("stat -c %Y /etc/passwd"), mtime, "[\(series)] /etc/passwd was touched")
    }

    /// `hostname NAME` and `kill -TERM PID` without --allow-writes: EPERM, and
    /// neither the host's name nor a host process is touched. Run inside fresh
    /// UTS, PID and mount namespaces (`unshare`), so a regression renames or
    /// signals nothing of the machine running the tests; the victim is a
    /// process of that namespace whose pid the guest also has.
    func machineCallsWithoutAllowWrites() throws {
        let swvmm = Swvmm.binary.path
        let script = """
            sleep 60 & victim=$!
            before=$(hostname)
            '\(swvmm)' shadow --gdb '\(guest.gdbAddress)' -- hostname swvmm-e2e-renamed; echo rename=$?
            '\(swvmm)' shadow --gdb '\(guest.gdbAddress)' -- kill -TERM $victim; echo kill=$?
            kill -0 $victim && echo victim-alive
            [ "$(hostname)" = "$before" ] && echo name-kept
            kill -KILL $victim
            """
        let hostName = Self.hostName()
        let (text, _) = try Self.inFreshNamespaces(["--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", script])
        print("[\(series)] machine calls without --allow-writes: \(text.split(separator: "\n").joined(separator: " | "))")
        for expected in ["rename=1", "kill=1", "victim-alive", "name-kept"] {
            XCTAssertTrue(text.contains(expected), "[\(series)] no '\(expected)' in\n\(text)")
        }
        XCTAssertTrue(text.contains("must be root") || text.contains("Operation not permitted"), "[\(series)] \(text)")
        XCTAssertEqual(Self.hostName(), hostName, "[\(series)] the host's name changed")
        XCTAssertEqual(try guest.text("hostname").trimmingCharacters(in: .whitespacesAndNewlines), "swvmm-guest")
        try guestSignalWithAllowWrites()
    }

    /// With --allow-writes, `kill -TERM PID` of a guest process runs kill(2)
    /// in S: the guest process ends. Inside a fresh PID namespace, so a
    /// regression that signalled locally would reach nothing of this host.
    func guestSignalWithAllowWrites() throws {
        let started = try guest.text("sleep 600 >/dev/null 2>&1 & echo GPID=$!")
        guard let gpid = started.components(separatedBy: "GPID=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            return XCTFail("[\(series)] no guest pid in \(started)")
        }
        let (text, status) = try Self.inFreshNamespaces(["--pid", "--fork", "--mount-proc", Swvmm.binary.path, "shadow",
                                                         "--gdb", guest.gdbAddress, "--allow-writes", "--", "kill", "-TERM", "\(gpid)"])
        XCTAssertEqual(status, 0, "[\(series)] \(text)")
        var alive = true
        for _ in 0 ..< 25 where alive {
            usleep(200_000)
            alive = (try guest.processTable())[gpid] != nil
        }
        XCTAssertFalse(alive, "[\(series)] guest process \(gpid) survived kill -TERM through S")
        print("[\(series)] kill -TERM \(gpid) with --allow-writes: status \(status), guest process gone: \(!alive)")
    }

    /// The guest is let run between bursts of calls: its uptime advances
    /// while the command sleeps (it stood still when the guest was held for
    /// the command's whole life).
    func guestTimePassesWhileTheCommandSleeps() throws {
        let result = try shadow(["sh", "-c", "cat /proc/uptime; sleep 3; cat /proc/uptime"], timeout: 120)
        XCTAssertEqual(result.status, 0, "[\(series)] \(result.summary)")
        let uptimes = result.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Double($0) } }
        guard uptimes.count == 2 else { return XCTFail("[\(series)] \(result.summary)") }
        print("[\(series)] guest time during a 3 s sleep: \(uptimes[1] - uptimes[0]) s")
        XCTAssertGreaterThan(uptimes[1] - uptimes[0], 2.0, "[\(series)] the guest stood still")
    }

    /// Runs `unshare` with `arguments` (namespace flags, then the command; as
    /// an unprivileged user, in a user namespace too) and returns its stdout
    /// and stderr together, and its exit status.
    static func inFreshNamespaces(_ arguments: [String]) throws -> (output: String, status: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = (getuid() != 0 ? ["--user", "--map-root-user"] : []) + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (text, process.terminationStatus)
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// One process making redirected calls for minutes (a recursive walk of
    /// the guest's /proc, ~10 ms a call under TCG). `/TAG` names the run in
    /// its command line; ls reports it missing (a local path) and goes on.
    /// It does not fork: a forking inspector can leave a child that escapes
    /// swvmm's cleanup (see InspectorProcess.kill), which is a product issue
    /// of its own, not what these fault checks are about.
    private func longCommand(_ tag: String) -> [String] {
        ["ls", "-R", "/proc", "/\(tag)"]
    }

    /// Waits until the inspector (`ls`, not swvmm) for `tag` runs; its pid.
    private func inspector(_ tag: String) -> Int32? {
        for _ in 0 ..< 100 {
            if let found = hostProcesses(containing: tag).first(where: { $0.commandLine.hasPrefix("ls -R") }) {
                usleep(1_500_000)   // let it make guest calls for a while
                return found.pid
            }
            usleep(100_000)
        }
        return nil
    }

    /// The inspector killed mid-command: swvmm ends, S's fds are closed.
    func inspectorKilled() throws {
        let tag = token()
        let run = BackgroundSwvmm(["shadow", "--gdb", guest.gdbAddress, "--"] + longCommand(tag), timeout: 60)
        guard let pid = inspector(tag) else { return XCTFail("[\(series)] the inspector did not start") }
        kill(pid, SIGKILL)
        let result = try run.wait()
        print("[\(series)] inspector killed: status \(result.status) after \(String(format: "%.1f", result.seconds)) s, \(result.stderrLines.last ?? "")")
        try assertClean(result, token: tag, message: ["signal 9"])
    }

    /// S killed (on the guest's console) mid-command: swvmm says S is gone.
    mutating func shadowKilled() throws {
        let tag = token()
        let run = BackgroundSwvmm(["shadow", "--gdb", guest.gdbAddress, "--"] + longCommand(tag), timeout: 60)
        guard inspector(tag) != nil else { return XCTFail("[\(series)] the inspector did not start") }
        _ = try guest.run("kill -9 \(shadowPID)")
        let result = try run.wait()
        print("[\(series)] S killed: status \(result.status) after \(String(format: "%.1f", result.seconds)) s, \(result.stderrLines.last ?? "")")
        try assertClean(result, token: tag, message: ["pid \(shadowPID)"], guestAlive: false)
        XCTAssertTrue(guest.answers(), "[\(series)] the guest's console does not answer")
        XCTAssertFalse((try guest.processTable())[shadowPID] != nil, "[\(series)] S \(shadowPID) survived kill -9")
        // The next run builds a new S, which starts with the usual fds.
        let next = try Swvmm.run(["shadow", "--gdb", guest.gdbAddress, "--verbose", "--", "hostname"], timeout: 120)
        XCTAssertEqual(next.status, 0, next.summary)
        XCTAssertEqual(next.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "swvmm-guest")
        guard let range = next.stderr.range(of: "built shadow process pid "),
              let pid = Int(next.stderr[range.upperBound...].prefix { $0.isNumber }) else {
            return XCTFail("[\(series)] no new S after kill: \(next.summary)")
        }
        XCTAssertNotEqual(pid, shadowPID)
        shadowPID = pid
        XCTAssertEqual(try guest.fds(of: pid), baselineFds, "[\(series)] fds of the new S")
    }

    /// Another spelling of the same gdbstub socket finds the same S (the state
    /// file is keyed by the socket's identity); `--stop-shadow` ends it.
    mutating func sameSocketOtherSpellingThenStop() throws {
        let path = String(guest.gdbAddress.dropFirst("unix:".count))
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let respelled = "unix:" + path[..<slash] + "/." + path[slash...]
        let reuse = try Swvmm.run(["shadow", "--gdb", respelled, "--verbose", "--", "true"], timeout: 120)
        XCTAssertEqual(reuse.status, 0, "[\(series)] \(reuse.summary)")
        XCTAssertTrue(reuse.stderr.contains("reusing shadow process pid \(shadowPID)"), "[\(series)] \(reuse.summary)")
        let stop = try Swvmm.run(["shadow", "--gdb", respelled, "--stop-shadow"], timeout: 60)
        XCTAssertEqual(stop.status, 0, "[\(series)] \(stop.summary)")
        XCTAssertTrue(stop.stderr.contains("pid \(shadowPID) told to exit"), "[\(series)] \(stop.summary)")
        var alive = true
        for _ in 0 ..< 50 where alive {
            usleep(200_000)
            alive = (try guest.processTable())[shadowPID] != nil
        }
        XCTAssertFalse(alive, "[\(series)] S \(shadowPID) still runs after --stop-shadow")
        print("[\(series)] --stop-shadow: \(stop.stderrLines.last ?? ""), S gone: \(!alive)")
        let none = try Swvmm.run(["shadow", "--gdb", guest.gdbAddress, "--stop-shadow"], timeout: 60)
        XCTAssertTrue(none.stderr.contains("no shadow process saved"), "[\(series)] \(none.summary)")
        try firstCallsOfNewShadows()
    }

    /// The first redirected calls of a freshly planted S (still touching its
    /// region) see the paths they were given: each of several new S answers
    /// both reads, never ENOENT.
    private func firstCallsOfNewShadows() throws {
        for round in 1 ... 4 {
            let run = try Swvmm.run(["shadow", "--gdb", guest.gdbAddress, "--verbose", "--", "sh", "-c", "cat /proc/loadavg; cat /proc/loadavg"],
                                    timeout: 120)
            XCTAssertTrue(run.stderr.contains("built shadow process"), "[\(series)] round \(round): \(run.summary)")
            XCTAssertEqual(run.status, 0, "[\(series)] round \(round): \(run.summary)")
            XCTAssertEqual(run.stdout.split(separator: "\n").count, 2, "[\(series)] round \(round): \(run.summary)")
            let stop = try Swvmm.run(["shadow", "--gdb", guest.gdbAddress, "--stop-shadow"], timeout: 60)
            XCTAssertEqual(stop.status, 0, "[\(series)] \(stop.summary)")
        }
        print("[\(series)] first calls of 4 new shadow processes checked")
    }

    /// The gdbstub dies mid-run (QEMU killed): swvmm says the connection is gone.
    func gdbstubDies() throws {
        let tag = token()
        let run = BackgroundSwvmm(["shadow", "--gdb", guest.gdbAddress, "--"] + longCommand(tag), timeout: 60)
        guard inspector(tag) != nil else { return XCTFail("[\(series)] the inspector did not start") }
        kill(guest.process.processIdentifier, SIGKILL)
        let result = try run.wait()
        print("[\(series)] gdbstub died: status \(result.status) after \(String(format: "%.1f", result.seconds)) s, \(result.stderrLines.last ?? "")")
        try assertClean(result, token: tag, message: ["swvmm:"], guestAlive: false)
    }
}
