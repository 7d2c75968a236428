import Foundation
import XCTest

/// Every committed fuzz seed (Fuzz/corpus/TARGET, the `regression-*` inputs
/// among them) replayed through its target with the plain `swvmm-fuzz`
/// build: a parser that traps or breaks a target's invariant again fails here,
/// without libFuzzer.
final class FuzzCorpusReplayTests: XCTestCase {
    func testEveryCommittedSeedReplaysCleanly() throws {
        let binary = Swvmm.packageRoot.appendingPathComponent(".build/debug/swvmm-fuzz")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("swvmm-fuzz not built at \(binary.path): run `swift build`")
        }
        let corpus = Swvmm.packageRoot.appendingPathComponent("Fuzz/corpus")
        let targets = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
        XCTAssertEqual(targets, ["bzimage", "control-messages", "elf", "gdb-packets", "gdb-stop-registers", "syscall-marshalling", "target-xml"])
        for target in targets {
            let directory = corpus.appendingPathComponent(target)
            let seeds = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
                .map { directory.appendingPathComponent($0).path }
            XCTAssertFalse(seeds.isEmpty, "no seeds for \(target)")
            let process = Process()
            process.executableURL = binary
            process.arguments = [target] + seeds
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .exit, "\(target): \(text)")
            XCTAssertEqual(process.terminationStatus, 0, "\(target): \(text)")
            XCTAssertTrue(text.contains("replayed \(seeds.count) inputs"), "\(target): \(text)")
        }
    }
}
