import Foundation
import XCTest

/// Runs the rows of `ShadowToolTable` against one guest.
extension ShadowToolChecks {
    /// Every row; a row that throws is reported and the next one runs,
    /// unless the KVM host or the guest itself is gone or hung (the caller may start a new one).
    func checkTable(_ rows: [ShadowToolRow] = ShadowToolTable.rows) throws {
        var passed = 0, failed: [String] = [], notRun = 0
        for row in rows {
            if case .hostFacts = row.support { notRun += 1; continue }
            let problems: [String]
            do {
                problems = try check(row)
            } catch let failure as KVMHostBridge.Failure where failure.description.contains(KVMHostBridge.hostEnded) {
                throw failure
            } catch let failure as SerialConsoleError where failure.meansTheGuestIsGone {
                // No row can pass on a dead guest; the caller may boot another.
                throw failure
            } catch {
                // A guest that hung would fail every later row: the caller may boot another.
                if !guest.answers() {
                    throw GuestStoppedAnswering(description: "after \(row.commandLine) failed (\(error)), the guest stopped answering its console")
                }
                problems = ["\(error)"]
            }
            if problems.isEmpty {
                passed += 1
            } else {
                failed.append(row.commandLine)
                for problem in problems { XCTFail("[\(series)] \(row.commandLine): \(problem)") }
            }
        }
        print("[\(series)] tool table: \(passed) rows as expected, \(failed.count) not (\(failed.joined(separator: "; "))), \(notRun) not run (host facts)")
    }

    /// The row's problems (none: it behaved as the table says).
    func check(_ row: ShadowToolRow) throws -> [String] {
        let command = try row.command.map(resolve)
        let truth = try resolve(row.groundTruth)
        if case .custom(_, let check) = row.comparison {
            try check(self)
            return []
        }
        if case .refused(_, let notice) = row.support {
            let result = try shadowRun(command, options: row.options, verbose: true, expectStatus: nil)
            var problems: [String] = []
            if result.status == 0 { problems.append("exited 0, but the table says it is refused") }
            if !result.stderr.contains(notice) { problems.append("stderr lacks \"\(notice)\": \(result.stderr)") }
            return problems
        }
        if case .sameExitStatus = row.comparison {
            let expected = try guest.run(truth, timeout: 30).status
            let result = try shadowRun(command, options: row.options, verbose: true, expectStatus: expected)
            return result.status == expected ? [] : ["exit status \(result.status), the console's \(expected)"]
        }
        var before = try guest.text(truth)
        let first = try shadowRun(command, options: row.options, verbose: true, expectStatus: row.exitStatus)
        var after = try guest.text(truth)
        var problems = Self.compare(first.stdout, before: before, after: after, by: row.comparison)
        // A run that trained a memo is run again: the memoized run answers
        // from predicted batches and must be as right as the first.
        guard first.stderr.contains(Self.memoTrained) else { return problems }
        before = try guest.text(truth)
        let memoized = try shadowRun(command, options: row.options, verbose: true, expectStatus: row.exitStatus)
        after = try guest.text(truth)
        if !memoized.stderr.contains(Self.memoUsed) { problems.append("the second run did not use the memo the first trained") }
        problems += Self.compare(memoized.stdout, before: before, after: after, by: row.comparison).map { "memoized: " + $0 }
        return problems
    }

    /// What `--verbose` says when a run trained a memo, and when one used it (FastPath.summary).
    static let memoTrained = "(memo trained)", memoUsed = "(memo used)"

    /// The mismatches between a tool's output and the truth read around it.
    static func compare(_ output: String, before: String, after: String, by comparison: ToolComparison) -> [String] {
        switch comparison {
        case .equal(let tool, let truthProjection):
            let truth = truthProjection ?? tool
            let got = tool.apply(output)
            let expected = [truth.apply(before), truth.apply(after)]
            if got.isEmpty && !expected[0].isEmpty { return ["no \(tool.description) in the output: \(output)"] }
            return expected.contains(got) ? [] : ["\(tool.description): \(got), the console's \(expected[0])"]
        case .sameSet(let tool, let truthProjection):
            let truth = truthProjection ?? tool
            let got = Set(tool.apply(output))
            let expected = [Set(truth.apply(before)), Set(truth.apply(after))]
            if expected.contains(got) { return [] }
            return ["\(tool.description): only the tool's \(got.subtracting(expected[0]).sorted()), only the console's \(expected[0].subtracting(got).sorted())"]
        case .coversStable(let tool, let truthProjection):
            let truth = truthProjection ?? tool
            let got = Set(tool.apply(output))
            let stable = Set(truth.apply(before)).intersection(truth.apply(after))
            if stable.isEmpty { return ["the console's truth is empty: nothing to compare"] }
            let missing = stable.subtracting(got)
            return missing.isEmpty ? [] : ["\(tool.description) missing: \(missing.sorted())"]
        case .sameExitStatus, .custom:
            return []
        }
    }

    /// `{pid:NAME}` and `{marker-pid}` replaced (see `ShadowToolRow.command`).
    func resolve(_ text: String) throws -> String {
        var result = text.replacingOccurrences(of: "{marker-pid}", with: String(marker.pid))
        while let open = result.range(of: "{pid:"), let close = result[open.upperBound...].firstIndex(of: "}") {
            let name = String(result[open.upperBound ..< close])
            let pids = try guest.text("pidof \(name)").split(separator: " ")
            guard let pid = pids.first.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }), Int(pid) != nil else {
                throw SerialConsoleError.io("no guest process \(name)")
            }
            result.replaceSubrange(open.lowerBound ... close, with: pid)
        }
        return result
    }
}
