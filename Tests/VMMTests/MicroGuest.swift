import MicroVM
import VMM
import XCTest

/// The micro-guest fixture: `MicroVM`, or a skip that says why when this
/// machine has no usable /dev/kvm.
enum MicroGuest {
    static let codeAddress = MicroVM.codeAddress
    static let pdpt = MicroVM.pdpt

    static func make(file: StaticString = #filePath, line: UInt = #line) throws -> MicroVM {
        do {
            return try MicroVM()
        } catch let error as KVMError {
            throw XCTSkip("no usable KVM on this machine: \(error)", file: file, line: line)
        }
    }
}
