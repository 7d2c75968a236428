import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Shadow
import Synchronization
import XCTest
@testable import swvmm

/// `swvmm bench shadow`'s result files, and the bench through the built
/// binary against a control server in this process. This machine cannot run
/// a guest under swvmm's own KVM, so the server's executor is a stand-in:
/// a LocalExecutor ("guest" calls run on this host) that reports a set-up
/// time for the run after each --stop-shadow, as the native provider does.
final class ShadowBenchTests: XCTestCase {
    private static let row = ShadowBenchRow(
        tool: "ps aux", kernel: "6.1.0-test", target: "vm", nativeSeconds: 0.02, redirectedSeconds: 0.5, memoizedSeconds: nil,
        redirectedCalls: 1200, localCalls: 300, notifications: 1510, transitionsPerCallFirst: 1.0, transitionsPerCallMemoized: nil,
        otherVCPUInterruptions: 0, hostMicrosecondsPerCall: 12.5, seccompRoundTripMicroseconds: 4.25)
    private static let quoted = ShadowBenchRow(
        tool: "sh -c \"a, b\" <x & y>", kernel: "6.12", target: "gdb", nativeSeconds: nil,
        nativeNote: "the guest has no sh in /bench/bin", redirectedSeconds: 2.5,
        memoizedSeconds: nil, redirectedCalls: 0, localCalls: 3, notifications: 3, transitionsPerCallFirst: nil,
        transitionsPerCallMemoized: nil, otherVCPUInterruptions: nil, hostMicrosecondsPerCall: 0, seccompRoundTripMicroseconds: 4.25)
    private static let environment = ShadowBenchEnvironment(
        hostCPU: "Test CPU \"X\"", hostKernel: "Linux 6.8.0 x86_64", hostHypervisor: "TCGTCGTCGTCG", guestKernel: "6.1.0-test",
        swvmmVersion: "development",
        gitCommit: nil, targetKind: "vm", targetAddress: "/run/vm.sock", guestCPUs: 3, nativeWhere: "guest",
        date: "2026-11-26T16:00:00Z", runs: 3)

    func testTheCSVHasItsHeaderAndOneLinePerTool() {
        let lines = ShadowBenchCSV.text([Self.row, Self.quoted]).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 4, "header, two rows, and the final newline")
        XCTAssertEqual(lines[0], "tool,kernel,target,native_s,redirected_s,memoized_s,slowdown,memoized_slowdown,redirected_calls,"
            + "local_calls,notifications,transitions_per_call_first,transitions_per_call_memoized,host_us_per_call,"
            + "seccomp_roundtrip_us,other_vcpu_interruptions")
        XCTAssertEqual(lines[1], "ps aux,6.1.0-test,vm,0.020000,0.500000,,25.00,,1200,300,1510,1.000,,12.50,4.25,0")
        XCTAssertTrue(lines[2].hasPrefix("\"sh -c \"\"a, b\"\" <x & y>\",6.12,gdb,,2.500000,,,,"), "no native time, no slowdowns: \(lines[2])")
        XCTAssertEqual(lines[3], "")
    }

    func testTheJSONParsesBackWithItsFields() throws {
        let setUp = ShadowSetUpTimes(bootstrapSeconds: 0.24, reconnectSeconds: 0.0005, samples: 10)
        let text = ShadowBenchJSON.text(rows: [Self.row, Self.quoted], environment: Self.environment, setUp: setUp)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let environment = try XCTUnwrap(parsed["environment"] as? [String: Any])
        XCTAssertEqual(environment["host_cpu"] as? String, "Test CPU \"X\"")
        XCTAssertEqual(environment["host_hypervisor"] as? String, "TCGTCGTCGTCG")
        XCTAssertEqual(environment["guest_kernel"] as? String, "6.1.0-test")
        XCTAssertEqual(environment["guest_cpus"] as? Int, 3)
        XCTAssertTrue(environment["git_commit"] is NSNull)
        XCTAssertEqual(environment["target_kind"] as? String, "vm")
        let results = try XCTUnwrap(parsed["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 2)
        XCTAssertEqual(results[0]["tool"] as? String, "ps aux")
        XCTAssertEqual(results[0]["redirected_calls"] as? Int, 1200)
        XCTAssertEqual(try XCTUnwrap(results[0]["slowdown"] as? Double), 25, accuracy: 1e-9)
        XCTAssertTrue(results[0]["memoized_s"] is NSNull)
        XCTAssertEqual(results[1]["tool"] as? String, Self.quoted.tool)
        XCTAssertTrue(results[1]["native_s"] is NSNull)
        XCTAssertTrue(results[1]["slowdown"] is NSNull)
        XCTAssertEqual(results[1]["native_note"] as? String, "the guest has no sh in /bench/bin")
        XCTAssertTrue(results[0]["native_note"] is NSNull)
        XCTAssertEqual(environment["native_where"] as? String, "guest")
        XCTAssertTrue(results[1]["transitions_per_call_first"] is NSNull)
        for column in ShadowBenchCSV.columns { XCTAssertNotNil(results[0][column], "results lack \(column)") }
        let set = try XCTUnwrap(parsed["shadow_setup"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(set["bootstrap_s"] as? Double), 0.24, accuracy: 1e-12)
        let notes = try XCTUnwrap(parsed["notes"] as? [String: String])
        XCTAssertTrue(notes["memoized_s"]?.contains("training run") == true, "\(notes)")
    }

    func testTheChartIsWellFormedXMLWithOneGroupPerTool() throws {
        let rows = [Self.row, Self.quoted, ShadowBenchRow(
            tool: "uptime", kernel: "6.12", target: "vm", nativeSeconds: 0.0008, redirectedSeconds: 0.04, memoizedSeconds: nil,
            redirectedCalls: 10, localCalls: 5, notifications: 15, transitionsPerCallFirst: 3.5, transitionsPerCallMemoized: nil,
            otherVCPUInterruptions: 0, hostMicrosecondsPerCall: 9, seccompRoundTripMicroseconds: 4)]
        let svg = ShadowBenchChart.text(rows: rows, title: "swvmm shadow through vm & <co>")
        final class Collector: NSObject, XMLParserDelegate {
            var toolGroups = 0, root: String?, texts: [String] = []
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if root == nil { root = name }
                if name == "g", attributes["class"] == "tool" { toolGroups += 1 }
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "not well-formed: \(String(describing: parser.parserError))\n\(svg)")
        XCTAssertEqual(collector.root, "svg")
        XCTAssertEqual(collector.toolGroups, 3)
        XCTAssertTrue(collector.texts.joined().contains(Self.quoted.tool), "the tool's name comes back unescaped")
    }

    /// The bench against a reference guest booted with the bench's tools
    /// (reference-guest.sh --bench): native_s is the host's binary timed in
    /// the guest, through its console, for each tool asked for (--only).
    func testNativeTimesComeFromInsideTheGuest() throws {
        try Swvmm.requireBinary()
        let guest = try ReferenceGuest.booting(series: "6.12", bench: true)
        defer { guest.stop() }
        guest.releaseConsole()
        let scratch = try ScratchDirectory()
        let output = scratch.url.appendingPathComponent("out").path
        let result = try Swvmm.run(["bench", "shadow", "--gdb", guest.gdbAddress, "--guest-console", guest.consolePath,
                                    "--only", "uname -a", "--only", "lsmod", "--round-trips", "2000", "--output", output], timeout: 600)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, result.summary)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: output + "/results.json"))) as? [String: Any])
        XCTAssertEqual((parsed["environment"] as? [String: Any])?["native_where"] as? String, "guest")
        let results = try XCTUnwrap(parsed["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["tool"] as? String }, ["lsmod", "uname -a"], "the tools asked for, in the list's order")
        for row in results {
            let native = try XCTUnwrap(row["native_s"] as? Double, "\(row)")
            XCTAssertGreaterThan(native, 0, "\(row)")
            XCTAssertLessThan(native, 60, "\(row)")
            XCTAssertTrue(row["native_note"] is NSNull, "\(row)")
        }
        let bad = try Swvmm.run(["bench", "shadow", "--gdb", guest.gdbAddress, "--only", "top"], timeout: 60)
        XCTAssertEqual(bad.status, 64, "a tool not in the list is a usage error: \(bad.summary)")
    }

    /// `--local`: no target, the supervisor alone; its rows describe this host.
    func testTheLocalBenchMeasuresTheSupervisorAlone() throws {
        try Swvmm.requireBinary()
        let scratch = try ScratchDirectory()
        let output = scratch.url.appendingPathComponent("out").path
        let result = try Swvmm.run(["bench", "shadow", "--local", "--only", "uname -a", "--round-trips", "500", "--output", output],
                                   timeout: 120)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, result.summary)
        let csv = try String(contentsOfFile: output + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 2, "header and one tool: \(csv)")
        let cells = csv[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let column = { (name: String) in cells[ShadowBenchCSV.columns.firstIndex(of: name) ?? 0] }
        XCTAssertEqual(column("target"), "local")
        XCTAssertEqual(column("kernel"), ShadowBenchHost.hostKernel().split(separator: " ")[1].description, "this host's uname -r")
        XCTAssertGreaterThan(Int(column("redirected_calls")) ?? 0, 0, String(csv[1]))
        XCTAssertGreaterThan(Double(column("host_us_per_call")) ?? 0, 0, String(csv[1]))
        XCTAssertGreaterThan(Double(column("seccomp_roundtrip_us")) ?? 0, 0, String(csv[1]))
        let both = try Swvmm.run(["bench", "shadow", "--local", "--gdb", "unix:/nonexistent"], timeout: 60)
        XCTAssertEqual(both.status, 64, "--local with a target is a usage error: \(both.summary)")
    }

    func testAMissingVMFailsClearly() throws {
        try Swvmm.requireBinary()
        let result = try Swvmm.run(["bench", "shadow", "--vm", "/nonexistent"], timeout: 60)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 1, result.summary)
        XCTAssertEqual(result.stderrLines, ["swvmm: no socket at /nonexistent: is a swvmm VM running with --shadow?"], result.summary)
        XCTAssertEqual(result.stdout, "", result.summary)
    }

    /// A LocalExecutor that says S was made (5 ms) on the first run after each stop.
    final class StandInExecutor: GuestSyscallExecutor, @unchecked Sendable {
        private let local = LocalExecutor()
        let remade = Mutex(false)
        private let madeForThisRun = Mutex(false)
        var regionAddress: UInt64 { local.regionAddress }
        var regionSize: Int { local.regionSize }
        var setUpDuration: Duration? { madeForThisRun.withLock { $0 } ? .milliseconds(5) : nil }
        func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try local.writeRegion(offset: offset, bytes) }
        func readRegion(offset: Int, count: Int) throws -> [UInt8] { try local.readRegion(offset: offset, count: count) }
        func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 { try local.syscall(number, arguments) }
        /// The provider's part: a run after a stop gets a set-up time.
        func handOut() -> StandInExecutor {
            let made = remade.withLock { was in defer { was = false }; return was }
            madeForThisRun.withLock { $0 = made }
            return self
        }
    }

    func testTheBenchThroughAVMServerWritesItsFiles() throws {
        try Swvmm.requireBinary()
        let scratch = try ScratchDirectory()
        let socket = scratch.url.appendingPathComponent("vm.sock").path
        let output = scratch.url.appendingPathComponent("out").path
        let executor = StandInExecutor()
        let server = try ShadowControlServer(socketPath: socket, provider: { executor.handOut() },
                                             stopShadow: { executor.remade.withLock { $0 = true }; return "ended" }, log: { _ in })
        try server.start()
        defer { server.stop() }
        let result = try Swvmm.run(["bench", "shadow", "--vm", socket, "--setup-runs", "2", "--round-trips", "500",
                                    "--output", output], timeout: 300)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertTrue(result.stdout.hasPrefix("| tool | native ms |"), result.summary)
        XCTAssertTrue(result.stdout.contains("bootstrap 5.0 ms"), result.summary)
        XCTAssertEqual(result.stderrLines.filter { $0.contains("] ") }.count, ShadowBenchmark.tools.count, result.summary)
        let csv = try String(contentsOfFile: output + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + ShadowBenchmark.tools.count)
        XCTAssertTrue(csv[1].hasPrefix("ps -e,"), String(csv[1]))
        // Each tool ran cold, once to train, and memoized: memoized_s and its transitions are filled.
        let cells = csv[1].split(separator: ",", omittingEmptySubsequences: false)
        XCTAssertNotNil(Double(cells[ShadowBenchCSV.columns.firstIndex(of: "memoized_s") ?? 0]), String(csv[1]))
        // The stand-in's "guest" is this host: its uname -r.
        XCTAssertEqual(String(csv[1].split(separator: ",")[1]), ShadowBenchHost.hostKernel().split(separator: " ")[1].description)
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/results.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/chart.svg"))
        print(result.stdout)
    }
}
