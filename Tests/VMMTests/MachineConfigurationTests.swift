import VMM
import XCTest

/// What the configuration refuses before any KVM object exists.
final class MachineConfigurationTests: XCTestCase {
    private func configuration(cpus: Int) -> MachineConfiguration {
        MachineConfiguration(kernelPath: "/nonexistent", cpuCount: cpus)
    }

    /// One limit for every check: a CPU count the configuration accepts is one the MP table and the MADT can describe.
    func testTheCPULimitIsTheBootTablesLimit() throws {
        let limit = MPTable.maxCPUCount
        XCTAssertNoThrow(try configuration(cpus: limit).validate(maximumVCPUs: 1024, hostMemory: 0))
        XCTAssertNoThrow(try MPTable.build(cpuCount: limit))
        XCTAssertNoThrow(try ACPITables.build(base: Layout.acpiTablesAddress, cpuCount: limit, eventBlock: 0x600, controlBlock: 0x604))
        XCTAssertThrowsError(try configuration(cpus: limit + 1).validate(maximumVCPUs: 1024, hostMemory: 0)) { error in
            XCTAssertEqual(error as? ConfigurationError, .invalidCPUCount(limit + 1, maximum: limit))
        }
    }

    func testKVMsLimitAppliesWhenLower() {
        XCTAssertNoThrow(try configuration(cpus: 8).validate(maximumVCPUs: 8, hostMemory: 0))
        XCTAssertThrowsError(try configuration(cpus: 9).validate(maximumVCPUs: 8, hostMemory: 0)) { error in
            XCTAssertEqual(error as? ConfigurationError, .invalidCPUCount(9, maximum: 8))
        }
        XCTAssertThrowsError(try configuration(cpus: 0).validate(maximumVCPUs: 8, hostMemory: 0))
    }
}
