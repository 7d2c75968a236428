import Foundation

/// One row of the shadow tool table: an unmodified host tool, the guest
/// console command that is its ground truth, and how the two are compared.
/// The same rows drive the end-to-end test (ShadowToolRowRunner.swift) and
/// write docs/tools.md (ShadowToolDocument).
struct ShadowToolRow: Sendable {
    /// How far the tool works through `swvmm shadow`.
    enum Support: Sendable {
        /// Runs and is compared with the ground truth.
        case works
        /// Refused by design: it must fail, and swvmm or the tool says why
        /// (`notice` is in its stderr); never host facts.
        case refused(why: String, notice: String)
        /// Not run by the test: it would show host facts (said in `why`).
        case hostFacts(why: String)
    }

    /// The tool's argument vector. `{pid:NAME}` is replaced by the guest pid of
    /// process NAME (busybox `pidof` on the console), `{marker-pid}` by the
    /// host-only marker's pid; the same in `groundTruth`.
    let command: [String]
    /// `swvmm shadow` options before `--` (e.g. `--guest-path`).
    var options: [String] = []
    /// The busybox shell command on the guest console whose output is the truth.
    let groundTruth: String
    let comparison: ToolComparison
    /// What the tool reads in the guest, for the user's table.
    let needs: String
    /// What differs from running the tool in the guest ("" when nothing does).
    var differences: String = ""
    var support: Support = .works
    /// The tool's exit status when it works as the table says.
    var exitStatus: Int32 = 0

    /// The command as a user types it.
    var commandLine: String {
        (options + command).map { $0.contains(" ") || $0.contains("<") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

/// Which lines or values of an output are compared.
struct ToolProjection: Sendable {
    let description: String
    let apply: @Sendable (String) -> [String]

    /// Every non-empty line, trailing blanks dropped, in order.
    static let lines = ToolProjection(description: "lines") { text in
        ToolOutput.lines(text).map { String($0.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
    }

    /// Field `index` (0-based, whitespace-separated) of each line after the first `skip`.
    static func column(_ index: Int, skip: Int = 0, of what: String) -> ToolProjection {
        ToolProjection(description: what) { text in
            ToolOutput.lines(text).dropFirst(skip).compactMap { line in
                let f = ToolOutput.fields(line)
                return f.count > index ? String(f[index]) : nil
            }
        }
    }

    /// The first field of each line that is a number (pids of a process table).
    static let pids = ToolProjection(description: "pids") { text in
        ToolOutput.lines(text).compactMap { line in ToolOutput.fields(line).first.flatMap { Int($0) }.map(String.init) }
    }

    /// Each match of `pattern`, its capture groups joined by a space.
    static func matches(_ pattern: String, of what: String) -> ToolProjection {
        ToolProjection(description: what) { text in
            guard let regex = try? NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines]) else { return ["bad pattern \(pattern)"] }
            let range = NSRange(text.startIndex..., in: text)
            return regex.matches(in: text, range: range).map { match in
                (1 ..< max(match.numberOfRanges, 2)).compactMap { i in
                    Range(match.range(at: i), in: text).map { String(text[$0]) }
                }.joined(separator: " ")
            }
        }
    }
}

/// How a tool's output and its ground truth must agree.
enum ToolComparison: Sendable {
    /// The projections are equal, in order, to the truth read just before or
    /// just after the tool (`truth`: how the console's output is read, when
    /// it is not the tool's own way).
    case equal(ToolProjection, truth: ToolProjection? = nil)
    /// The same set, against the truth read just before or just after.
    case sameSet(ToolProjection, truth: ToolProjection? = nil)
    /// Everything the truth shows both before and after the tool is in the
    /// tool's output (processes come and go while it runs).
    case coversStable(ToolProjection, truth: ToolProjection? = nil)
    /// The tool's exit status is the ground truth command's (`kill -0`).
    case sameExitStatus
    /// A check of its own (ShadowToolTests.swift), described for the table.
    case custom(String, @Sendable (ShadowToolChecks) throws -> Void)

    /// The comparison in words, for the user's table.
    var description: String {
        switch self {
        case .equal(let p, let t): return "same \(p.description)" + Self.truthWords(t)
        case .sameSet(let p, let t): return "same set of \(p.description)" + Self.truthWords(t)
        case .coversStable(let p, let t): return "covers the truth's \(p.description) present both before and after" + Self.truthWords(t)
        case .sameExitStatus: return "same exit status"
        case .custom(let what, _): return what
        }
    }

    private static func truthWords(_ truth: ToolProjection?) -> String {
        truth.map { " (truth: \($0.description))" } ?? ""
    }
}
