/// Just enough XML for GDB target descriptions ("Target Description Format"):
/// yields each element's tag name and attributes in document order, skipping
/// text, comments (`<!-- -->`, which QEMU uses to disable registers), `<?...?>`
/// and `<!DOCTYPE>`. Not a general XML parser: no namespaces, no CDATA, no DTD.
struct XMLTag: Equatable {
    var name: String
    var attributes: [String: String]
    /// `</name>`.
    var isClosing: Bool
}

enum XMLTagScanner {
    /// Scans `text` into tags; throws on constructs it cannot make sense of.
    static func tags(in text: String) throws -> [XMLTag] {
        let bytes = Array(text.utf8)
        var tags: [XMLTag] = []
        var i = 0
        func starts(_ s: String, at index: Int) -> Bool {
            let p = Array(s.utf8)
            return index + p.count <= bytes.count && Array(bytes[index..<index + p.count]) == p
        }
        func find(_ s: String, from index: Int) -> Int? {
            var j = index
            while j < bytes.count { if starts(s, at: j) { return j }; j += 1 }
            return nil
        }
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "<") else { i += 1; continue }
            if starts("<!--", at: i) {
                guard let close = find("-->", from: i + 4) else { throw GDBRemoteError.badTargetDescription("unterminated comment") }
                i = close + 3
                continue
            }
            if starts("<?", at: i) {
                guard let close = find("?>", from: i + 2) else { throw GDBRemoteError.badTargetDescription("unterminated <?...?>") }
                i = close + 2
                continue
            }
            if starts("<!", at: i) {  // <!DOCTYPE ...> without an internal subset
                guard let close = find(">", from: i + 2) else { throw GDBRemoteError.badTargetDescription("unterminated <!...>") }
                i = close + 1
                continue
            }
            guard let close = endOfTag(bytes, from: i + 1) else { throw GDBRemoteError.badTargetDescription("unterminated tag") }
            tags.append(try parseTag(Array(bytes[(i + 1)..<close])))
            i = close + 1
        }
        return tags
    }

    /// The index of the `>` closing a tag, skipping quoted attribute values.
    private static func endOfTag(_ bytes: [UInt8], from start: Int) -> Int? {
        var quote: UInt8? = nil
        var j = start
        while j < bytes.count {
            let c = bytes[j]
            if let q = quote { if c == q { quote = nil } } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { quote = c } else if c == UInt8(ascii: ">") { return j }
            j += 1
        }
        return nil
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
    private static func isNameByte(_ c: UInt8) -> Bool {
        !isSpace(c) && c != UInt8(ascii: "=") && c != UInt8(ascii: "/") && c != UInt8(ascii: ">") && c != UInt8(ascii: "\"") && c != UInt8(ascii: "'")
    }

    private static func parseTag(_ inner: [UInt8]) throws -> XMLTag {
        var j = 0
        var closing = false
        if j < inner.count && inner[j] == UInt8(ascii: "/") { closing = true; j += 1 }
        let nameStart = j
        while j < inner.count && isNameByte(inner[j]) { j += 1 }
        guard j > nameStart else { throw GDBRemoteError.badTargetDescription("tag without a name: '<\(excerpt(inner))>'") }
        let name = String(decoding: inner[nameStart..<j], as: UTF8.self)
        var attributes: [String: String] = [:]
        while true {
            while j < inner.count && isSpace(inner[j]) { j += 1 }
            if j >= inner.count || inner[j] == UInt8(ascii: "/") { break }
            let keyStart = j
            while j < inner.count && isNameByte(inner[j]) { j += 1 }
            guard j > keyStart else { throw GDBRemoteError.badTargetDescription("bad attribute in '<\(excerpt(inner))>'") }
            let key = String(decoding: inner[keyStart..<j], as: UTF8.self)
            while j < inner.count && isSpace(inner[j]) { j += 1 }
            guard j < inner.count, inner[j] == UInt8(ascii: "=") else {
                throw GDBRemoteError.badTargetDescription("attribute '\(key)' without a value")
            }
            j += 1
            while j < inner.count && isSpace(inner[j]) { j += 1 }
            guard j < inner.count, inner[j] == UInt8(ascii: "\"") || inner[j] == UInt8(ascii: "'") else {
                throw GDBRemoteError.badTargetDescription("attribute '\(key)' value not quoted")
            }
            let quote = inner[j]
            j += 1
            let valueStart = j
            while j < inner.count && inner[j] != quote { j += 1 }
            guard j < inner.count else { throw GDBRemoteError.badTargetDescription("unterminated value of '\(key)'") }
            attributes[key] = unescape(String(decoding: inner[valueStart..<j], as: UTF8.self))
            j += 1
        }
        return XMLTag(name: name, attributes: attributes, isClosing: closing)
    }

    /// The five predefined entities; numeric references are left alone.
    private static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingAll("&lt;", "<").replacingAll("&gt;", ">").replacingAll("&quot;", "\"")
            .replacingAll("&apos;", "'").replacingAll("&amp;", "&")
    }
}

extension String {
    /// `replacingOccurrences` without Foundation.
    func replacingAll(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
