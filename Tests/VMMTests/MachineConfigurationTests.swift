import XCTest
@testable import VMM

/// What `MachineConfiguration.validate` refuses before any KVM object exists.
final class MachineConfigurationTests: XCTestCase {
    func testCommandLineIsCheckedWithWhatSwvmmAppends() throws {
        let kernel = try loadKernel(SyntheticImage.bzImage(cmdlineSize: 10))
        let configuration = MachineConfiguration(kernelPath: "unused", commandLine: "0123456789", memory: MemorySize(bytes: 64 << 20))
        // With VT-x the command line is the user's, exactly at the limit.
        XCTAssertEqual(try configuration.validate(kernel: kernel, hardwareVirtualization: true, hostMemory: 0).text, "0123456789")
        // Without it swvmm appends " noxsave", which no longer fits: the message says so.
        XCTAssertThrowsError(try configuration.validate(kernel: kernel, hardwareVirtualization: false, hostMemory: 0)) { error in
            XCTAssertEqual(error as? ConfigurationError, .commandLineTooLong(length: 18, limit: 10, appended: " noxsave"))
            XCTAssertEqual("\(error)", "command line is 18 bytes, counting the \"noxsave\" swvmm appends on this host; the kernel accepts at most 10")
        }
        var long = configuration
        long.commandLine = "0123456789A"
        XCTAssertThrowsError(try long.validate(kernel: kernel, hardwareVirtualization: true, hostMemory: 0)) { error in
            XCTAssertEqual("\(error)", "command line is 11 bytes; the kernel accepts at most 10")
        }
    }

    func testCPUCountAgainstKVMAndMPTable() throws {
        var configuration = MachineConfiguration(kernelPath: "unused", cpuCount: 300)
        XCTAssertThrowsError(try configuration.checkCPUCount(maximumVCPUs: 1024)) { error in
            XCTAssertEqual(error as? ConfigurationError, .invalidCPUCount(300, maximum: MachineConfiguration.maximumCPUsInMPTable))
        }
        configuration.cpuCount = 8
        XCTAssertThrowsError(try configuration.checkCPUCount(maximumVCPUs: 4))
        XCTAssertNoThrow(try configuration.checkCPUCount(maximumVCPUs: 8))
    }

    /// One limit for every check: a CPU count the configuration accepts is one the MP table and the MADT can describe.
    func testTheCPULimitIsTheBootTablesLimit() throws {
        let limit = MPTable.maxCPUCount
        XCTAssertEqual(MachineConfiguration.maximumCPUsInMPTable, limit)
        XCTAssertNoThrow(try MachineConfiguration(kernelPath: "unused", cpuCount: limit).checkCPUCount(maximumVCPUs: 1024))
        XCTAssertNoThrow(try MPTable.build(cpuCount: limit))
        XCTAssertNoThrow(try ACPITables.build(base: Layout.acpiTablesAddress, cpuCount: limit, eventBlock: 0x600, controlBlock: 0x604))
        XCTAssertThrowsError(try MachineConfiguration(kernelPath: "unused", cpuCount: limit + 1).checkCPUCount(maximumVCPUs: 1024)) { error in
            XCTAssertEqual(error as? ConfigurationError, .invalidCPUCount(limit + 1, maximum: limit))
        }
    }
}
