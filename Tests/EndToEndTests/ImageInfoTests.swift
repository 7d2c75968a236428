import Foundation
import XCTest

/// `swvmm image-info PATH` against values read independently: the raw header
/// bytes at the offsets boot.rst documents, and file(1)'s report.
final class ImageInfoTests: XCTestCase {
    func testBzImage612HeaderFields() throws {
        try checkBzImage("bzImage-6.12")
    }

    func testBzImageTinyHeaderFields() throws {
        try checkBzImage("bzImage-tiny")
    }

    func testVmlinuxEntryAndSegments() throws {
        try Swvmm.requireBinary()
        let path = try Swvmm.image("vmlinux-tiny")
        let header = try readPrefix(path, count: 4096)
        let info = try imageInfo(path)
        // ELF64 header: e_entry at 0x18, e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38; p_type first in each phdr.
        let phoff = Int(u64(header, at: 0x20)), entsize = Int(u16(header, at: 0x36)), count = Int(u16(header, at: 0x38))
        let loads = (0..<count).filter { u32(header, at: phoff + $0 * entsize) == 1 }.count
        XCTAssertEqual(info["format"].map { $0.contains("ELF") }, true, "\(info)")
        XCTAssertEqual(info["entry point"].flatMap(hexValue), u64(header, at: 0x18))
        XCTAssertEqual(info["load segments"], "\(loads)")
    }

    func testImageInfoRefusesANonKernel() throws {
        try Swvmm.requireBinary()
        let scratch = try ScratchDirectory()
        let path = try scratch.file("text", Array("not a kernel\n".utf8))
        let result = try Swvmm.run(["image-info", path], timeout: 20)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 1, result.summary)
        XCTAssertEqual(result.stderrLines.count, 1, result.summary)
        XCTAssertTrue(result.stderr.contains("not a Linux kernel image"), result.summary)
        XCTAssertEqual(result.stdout, "")
    }

    // MARK: - Helpers

    private func checkBzImage(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try Swvmm.requireBinary()
        let path = try Swvmm.image(name)
        let fileSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let header = try readPrefix(path, count: 64 << 10)
        let info = try imageInfo(path)

        // boot.rst "The Real-Mode Kernel Header" offsets.
        let version = u16(header, at: 0x206)
        XCTAssertEqual(info["boot protocol"], "\(version >> 8).\(String(format: "%02d", version & 0xFF))", file: file, line: line)
        let setupSects = header[0x1F1] == 0 ? 4 : Int(header[0x1F1])
        XCTAssertEqual(info["setup sectors"], "\(setupSects)", file: file, line: line)
        XCTAssertEqual(firstWordHex(info["loadflags"]), UInt64(header[0x211]), file: file, line: line)
        let xloadflags = u16(header, at: 0x236)
        XCTAssertEqual(firstWordHex(info["xloadflags"]), UInt64(xloadflags), file: file, line: line)
        XCTAssertEqual(info["xloadflags"]?.contains("XLF_KERNEL_64"), xloadflags & 1 == 1, file: file, line: line)
        XCTAssertEqual(info["preferred address"].flatMap(hexValue), u64(header, at: 0x258), file: file, line: line)
        XCTAssertEqual(firstWordHex(info["init size"]), UInt64(u32(header, at: 0x260)), file: file, line: line)
        XCTAssertEqual(info["command line size"], "\(u32(header, at: 0x238))", file: file, line: line)
        let setupBytes = (setupSects + 1) * 512
        XCTAssertEqual(info["protected-mode kernel"],
                       "\(fileSize - setupBytes) bytes at file offset 0x\(String(setupBytes, radix: 16))",
                       file: file, line: line)

        // kernel_version (0x20E) points, minus 0x200, at a NUL-terminated string.
        let pointer = Int(u16(header, at: 0x20E)) + 0x200
        let raw = String(decoding: header[pointer...].prefix(while: { $0 != 0 }), as: UTF8.self)
        let reported = try XCTUnwrap(info["kernel version"], "no kernel version in \(info)", file: file, line: line)
        XCTAssertEqual(reported, raw, file: file, line: line)
        if let described = try fileVersion(path) {
            XCTAssertEqual(reported, described, "image-info vs file(1)", file: file, line: line)
        }
    }

    /// image-info's rows as label -> value (label and value are separated by two or more spaces).
    private func imageInfo(_ path: String) throws -> [String: String] {
        let result = try Swvmm.run(["image-info", path], timeout: 20)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, result.summary)
        var rows: [String: String] = [:]
        for line in result.stdoutLines {
            guard let gap = line.range(of: "  ") else { continue }
            rows[String(line[..<gap.lowerBound])] = line[gap.upperBound...].trimmingCharacters(in: .whitespaces)
        }
        return rows
    }

    /// The "version ..." part of `file -b`'s description, or nil without file(1).
    private func fileVersion(_ path: String) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/file") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/file")
        process.arguments = ["-b", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let start = try XCTUnwrap(output.range(of: "version "), "file(1) says: \(output)")
        let rest = output[start.upperBound...]
        return String(rest[..<(rest.range(of: ", ")?.lowerBound ?? rest.endIndex)])
    }

    private func readPrefix(_ path: String, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        return Array(try handle.read(upToCount: count) ?? Data())
    }

    private func hexValue(_ text: String) -> UInt64? {
        guard text.lowercased().hasPrefix("0x") else { return nil }
        return UInt64(text.dropFirst(2).prefix(while: { $0.isHexDigit }), radix: 16)
    }

    private func firstWordHex(_ text: String?) -> UInt64? {
        text.flatMap { $0.split(separator: " ").first }.flatMap { hexValue(String($0)) }
    }
}
