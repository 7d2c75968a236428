import XCTest
@testable import GDBRemote

/// Target description parsing with a small synthetic document set shaped like
/// QEMU's (an include, regnum on the first register only, registers disabled
/// inside a comment). The real QEMU XML is parsed in the live tests.
final class TargetDescriptionTests: XCTestCase {
    let documents = [
        "target.xml": """
        <?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">
        <target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/>
        <feature name="extra"><reg name="late" bitsize="32" regnum="40"/><reg name="later" bitsize='16'/></feature></target>
        """,
        "core.xml": """
        <?xml version="1.0"?>
        <!-- a comment with <reg name="fake" bitsize="8"/> inside -->
        <feature name="org.gnu.gdb.i386.core">
          <flags id="f" size="4"><field name="CF" start="0" end="0"/></flags>
          <reg name="rax" bitsize="64" type="int64" regnum="0"/>
          <reg name="rbx" bitsize="64"/>
          <reg name="eflags" bitsize="32" type="f"/>
          <!--reg name="cs_base" bitsize="64"/>
          <reg name="ss_base" bitsize="64"/-->
          <reg name="fs_base" bitsize="64" />
          <reg name="a&amp;b" bitsize="8"/>
        </feature>
        """,
    ]

    func load(_ docs: [String: String]) throws -> TargetDescription {
        try TargetDescription.load { annex in
            guard let text = docs[annex] else { throw GDBRemoteError.errorReply(request: annex, code: 0) }
            return text
        }
    }

    func testIncludesCommentsAndImplicitNumbers() throws {
        let d = try load(documents)
        XCTAssertEqual(d.registers.map(\.name), ["rax", "rbx", "eflags", "fs_base", "a&b", "late", "later"])
        XCTAssertEqual(d.registers.map(\.number), [0, 1, 2, 3, 4, 40, 41])
        XCTAssertEqual(d.register(named: "later")?.byteSize, 2)
        XCTAssertNil(d.register(named: "ss_base"))
        XCTAssertNil(d.register(named: "fake"))
        XCTAssertEqual(d.offsetInRegisterBlock(of: 3), 8 + 8 + 4)
        XCTAssertNil(d.offsetInRegisterBlock(of: 40))  // gap 5...39: not in a trustworthy g layout
    }

    func testMalformedDescriptionsAreRejected() {
        func rejects(_ core: String, file: StaticString = #filePath, line: UInt = #line) {
            var docs = documents
            docs["core.xml"] = core
            XCTAssertThrowsError(try load(docs), file: file, line: line)
        }
        rejects(#"<reg name="x" bitsize="64""#)                       // unterminated tag
        rejects(#"<reg name="x" bitsize="0"/>"#)                      // bad bitsize
        rejects(#"<reg bitsize="8"/>"#)                               // no name
        rejects(#"<reg name="x" bitsize="8" regnum="-3"/>"#)          // bad regnum
        rejects(#"<reg name="rax" bitsize="8" regnum="0"/><reg name="rax" bitsize="8"/>"#)  // duplicate
        rejects(#"<!-- never closed"#)
        rejects(#"<xi:include href="../../etc/passwd"/>"#)          // not a plain annex name
        rejects(#"<xi:include href="core.xml"/>"#)                   // include loop, bounded by depth
        rejects(#"<reg name=x bitsize="8"/>"#)                        // unquoted value
    }

    func testNoRegistersIsAnError() {
        XCTAssertThrowsError(try load(["target.xml": "<target></target>"]))
    }
}
