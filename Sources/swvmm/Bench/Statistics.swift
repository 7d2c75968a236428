/// Median of `values` (the middle value, or the mean of the two middle ones).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// `value` with `digits` decimals.
func formatted(_ value: Double, digits: Int = 2) -> String {
    guard value.isFinite else { return "n/a" }
    if digits <= 0 { return String(Int(value.rounded())) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    let text = String(rounded)
    guard let dot = text.firstIndex(of: ".") else { return text + "." + String(repeating: "0", count: digits) }
    let decimals = text.distance(from: dot, to: text.endIndex) - 1
    return text + String(repeating: "0", count: max(0, digits - decimals))
}
