import Glibc

/// The chart.svg writer: one row per tool, native, redirected (one-call
/// path) and memoized wall time as bars on a log scale (one gridline per
/// decade), and transitions per redirected call, one-call and memoized, on a
/// linear scale beside them. Plain SVG 1.1, no
/// scripts or external references, so any browser or viewer shows it alone.
enum ShadowBenchChart {
    /// Layout, in SVG user units (pixels).
    static let width = 960
    static let rowHeight = 48
    static let top = 70
    static let labelWidth = 190
    static let timeLeft = 200, timeRight = 640
    static let transitionsLeft = 780, transitionsRight = 940
    static let nativeColour = "#4477aa", redirectedColour = "#ee6677", memoizedColour = "#ccbb44"
    static let transitionsColour = "#228833", memoizedTransitionsColour = "#66ccee"

    /// The document for `rows`; `title` names the target and guest kernel.
    static func text(rows: [ShadowBenchRow], title: String) -> String {
        let times = rows.flatMap { [$0.nativeSeconds, $0.redirectedSeconds, $0.memoizedSeconds].compactMap { $0 } }
            .filter { $0.isFinite && $0 > 0 }
        let lowest = decade(below: times.min() ?? 1e-3), highest = max(decade(above: times.max() ?? 1), lowest + 1)
        let mostTransitions = max(1, rows.compactMap(\.transitionsPerCallFirst).filter(\.isFinite).max() ?? 1)
        let height = top + rows.count * rowHeight + 40
        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="sans-serif" font-size="12">
        <title>\(escaped(title))</title>
        <rect width="\(width)" height="\(height)" fill="white"/>
        <text x="10" y="20" font-size="15" font-weight="bold">\(escaped(title))</text>
        <rect x="\(timeLeft)" y="32" width="12" height="10" fill="\(nativeColour)"/>
        <text x="\(timeLeft + 16)" y="41">native (same binary)</text>
        <rect x="\(timeLeft + 150)" y="32" width="12" height="10" fill="\(redirectedColour)"/>
        <text x="\(timeLeft + 166)" y="41">redirected, one call at a time</text>
        <rect x="\(timeLeft + 340)" y="32" width="12" height="10" fill="\(memoizedColour)"/>
        <text x="\(timeLeft + 356)" y="41">memoized (wall time, log scale)</text>
        <text x="\(transitionsLeft - 60)" y="41">transitions per redirected call: one-call, memoized</text>

        """
        // One gridline and label per decade of seconds.
        for exponent in lowest ... highest {
            let x = timeX(pow10(exponent), lowest: lowest, highest: highest)
            svg += "<line x1=\"\(x)\" y1=\"\(top - 8)\" x2=\"\(x)\" y2=\"\(top + rows.count * rowHeight)\" stroke=\"#cccccc\"/>\n"
            svg += "<text x=\"\(x)\" y=\"\(top + rows.count * rowHeight + 16)\" text-anchor=\"middle\">\(secondsLabel(exponent))</text>\n"
        }
        for (index, row) in rows.enumerated() {
            let y = top + index * rowHeight
            let redirected = bar(row.redirectedSeconds, lowest: lowest, highest: highest)
            let memoized = row.memoizedSeconds.map { bar($0, lowest: lowest, highest: highest) }
            svg += """
            <g class="tool">
            <text x="\(labelWidth)" y="\(y + 23)" text-anchor="end">\(escaped(row.tool))</text>
            <rect x="\(timeLeft)" y="\(y + 13)" width="\(redirected)" height="11" fill="\(redirectedColour)"/>
            <text x="\(timeLeft + redirected + 4)" y="\(y + 22)" font-size="10">\(duration(row.redirectedSeconds)) \
            (\(row.slowdown.map { ShadowBenchCSV.number($0, 0) + "x" } ?? "no native time"))</text>

            """
            if let seconds = row.nativeSeconds {
                let native = bar(seconds, lowest: lowest, highest: highest)
                svg += """
                <rect x="\(timeLeft)" y="\(y)" width="\(native)" height="11" fill="\(nativeColour)"/>
                <text x="\(timeLeft + native + 4)" y="\(y + 9)" font-size="10">\(duration(seconds))</text>

                """
            }
            if let memoized, let seconds = row.memoizedSeconds {
                svg += """
                <rect x="\(timeLeft)" y="\(y + 26)" width="\(memoized)" height="11" fill="\(memoizedColour)"/>
                <text x="\(timeLeft + memoized + 4)" y="\(y + 35)" font-size="10">\(duration(seconds)) \
                (\(row.memoizedSlowdown.map { ShadowBenchCSV.number($0, 0) + "x" } ?? "no native time"))</text>

                """
            }
            for (offset, value, colour) in [(0, row.transitionsPerCallFirst, transitionsColour),
                                            (13, row.transitionsPerCallMemoized, memoizedTransitionsColour)] {
                let transitions = value.flatMap { $0.isFinite ? $0 : nil }
                let width = transitions.map { Int(($0 / mostTransitions) * Double(transitionsRight - transitionsLeft - 40)) } ?? 0
                svg += """
                <rect x="\(transitionsLeft)" y="\(y + offset)" width="\(width)" height="11" fill="\(colour)"/>
                <text x="\(transitionsLeft + width + 4)" y="\(y + offset + 9)" font-size="10">\
                \(transitions.map { formatted($0, digits: 2) } ?? "n/a")</text>

                """
            }
            svg += "</g>\n"
        }
        return svg + "</svg>\n"
    }

    /// Text with XML's five special characters escaped.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    private static func bar(_ seconds: Double, lowest: Int, highest: Int) -> Int {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return max(1, timeX(seconds, lowest: lowest, highest: highest) - timeLeft)
    }

    /// The x of `seconds` on the log axis from 10^lowest to 10^highest.
    private static func timeX(_ seconds: Double, lowest: Int, highest: Int) -> Int {
        let position = (log10(seconds) - Double(lowest)) / Double(highest - lowest)
        return timeLeft + Int((min(max(position, 0), 1) * Double(timeRight - timeLeft)).rounded())
    }

    private static func decade(below value: Double) -> Int { Int(log10(value).rounded(.down)) }
    private static func decade(above value: Double) -> Int { Int(log10(value).rounded(.up)) }

    private static func pow10(_ exponent: Int) -> Double {
        var value = 1.0
        for _ in 0 ..< abs(exponent) { value *= 10 }
        return exponent < 0 ? 1 / value : value
    }

    /// "1 ms", "10 s"...: a decade's label.
    private static func secondsLabel(_ exponent: Int) -> String {
        switch exponent {
        case ..<(-6): return "1e\(exponent) s"
        case -6 ..< -3: return "\(Int(pow10(exponent + 6).rounded())) µs"
        case -3 ..< 0: return "\(Int(pow10(exponent + 3).rounded())) ms"
        default: return "\(Int(pow10(exponent).rounded())) s"
        }
    }

    private static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "n/a" }
        return seconds < 1 ? formatted(seconds * 1000, digits: 1) + " ms" : formatted(seconds, digits: 2) + " s"
    }
}
