import Foundation
import XCTest

/// `--trace-exits` on a hand-assembled ELF micro-kernel (MicroKernel.swift):
/// every port write shows up as one trace line with its port and value, in
/// order, and the histogram at the end counts them.
final class TraceExitsTests: XCTestCase {
    func testMicroKernelOutputReachesStdoutAndResetEndsTheRun() throws {
        try Swvmm.requireBinaryAndKVM()
        let scratch = try ScratchDirectory()
        let kernel = MicroKernel(message: "swvmm e2e \(UInt16.random(in: 1000...9999))\n")
        let path = try scratch.file("micro.elf", kernel.elf)

        let result = try Swvmm.run(["--kernel", path, "--memory", "16M"], timeout: 30)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, "the i8042 reset should end swvmm with status 0\n\(result.summary)")
        XCTAssertEqual(Array(result.stdout.utf8), kernel.message, "the guest's serial bytes, exactly")
        XCTAssertFalse(result.stderr.contains("IO_OUT"), "no trace without --trace-exits")
        XCTAssertLessThan(result.seconds, 10)
    }

    func testTraceListsEachPortWriteAndTheHistogramCountsThem() throws {
        try Swvmm.requireBinaryAndKVM()
        let scratch = try ScratchDirectory()
        let kernel = MicroKernel(message: "trace\(UInt8.random(in: 10...99))\n")
        let path = try scratch.file("micro.elf", kernel.elf)

        let result = try Swvmm.run(["--kernel", path, "--memory", "16M", "--trace-exits"], timeout: 30)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertEqual(Array(result.stdout.utf8), kernel.message, "tracing must not change the guest's output")

        let traces = result.stderrLines.filter { $0.hasPrefix("[vcpu0] ") }
        let outs = traces.filter { $0.contains("IO_OUT") }
        // One exit per `out`: the message to COM1, then 0xFE to the i8042 command port.
        let expected = kernel.message.map { ("03f8", hex2($0)) } + [("0064", "fe")]
        XCTAssertEqual(outs.count, expected.count, result.summary)
        for (index, (line, want)) in zip(outs, expected).enumerated() {
            XCTAssertTrue(line.contains("port=0x\(want.0)"), "exit \(index): '\(line)' lacks port 0x\(want.0)")
            XCTAssertTrue(line.lowercased().contains("value=\(want.1)"), "exit \(index): '\(line)' lacks value \(want.1)")
            // The trace names the `out` that caused the exit, whether KVM left rip
            // on it (hardware exits) or already past it (an emulating KVM).
            let out = kernel.outInstructions[index]
            XCTAssertEqual(ripValue(line), out.address, "exit \(index): '\(line)' does not point at the out")
            XCTAssertTrue(line.contains("  out "), "exit \(index): '\(line)' does not name the out instruction")
        }

        // The histogram: "VM exits by reason (N in all):" then "  IO_OUT  <count>  ###".
        let lines = result.stderrLines
        let header = try XCTUnwrap(lines.firstIndex(where: { $0.hasPrefix("VM exits by reason") }), result.summary)
        XCTAssertTrue(lines[header].contains("(\(traces.count) in all)"), "'\(lines[header])' vs \(traces.count) traced exits")
        let row = try XCTUnwrap(lines[(header + 1)...].first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("IO_OUT ") }))
        let fields = row.split(separator: " ")
        XCTAssertEqual(fields.count >= 2 ? Int(fields[1]) : nil, outs.count, "histogram row '\(row)'")
        XCTAssertGreaterThan(header, traces.count - 1, "the histogram comes after the trace lines")
    }

    func testTraceOnALinuxBootShowsSerialWritesAndAHistogram() throws {
        try Swvmm.requireBinaryAndKVM()
        let kernel = try Swvmm.image("vmlinux-tiny")
        // Runs until the kernel stops by itself: the int3 limit here (about 10 s), a panic-reboot
        // (no root file system, panic=-1, reboot=k) on hardware-virtualization hosts.
        let result = try Swvmm.run(["--kernel", kernel, "--memory", "64M", "--trace-exits"], timeout: 60)
        Swvmm.assertEndedCleanly(result)
        XCTAssertTrue(result.stdout.contains("Linux version"), result.summary)
        XCTAssertTrue(result.stderrLines.contains(where: { $0.contains("IO_OUT") && $0.contains("port=0x03f8") }), result.summary)
        let header = try XCTUnwrap(result.stderrLines.first(where: { $0.hasPrefix("VM exits by reason") }), result.summary)
        let total = header.split(separator: "(").last?.split(separator: " ").first.flatMap { Int($0) }
        XCTAssertEqual(total, result.stderrLines.filter { $0.hasPrefix("[vcpu") }.count, "histogram total vs trace lines")
    }

    private func hex2(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }

    private func ripValue(_ line: String) -> UInt64? {
        guard let range = line.range(of: "rip=0x") else { return nil }
        return UInt64(line[range.upperBound...].prefix(while: { $0.isHexDigit }), radix: 16)
    }
}
