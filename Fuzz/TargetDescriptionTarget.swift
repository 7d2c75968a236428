import GDBRemote

// The target description: target.xml and the files it includes. The input is
// split at NUL bytes: the first part is target.xml, the others are served in
// turn for whatever the description includes.

func fuzzTargetDescription(_ bytes: [UInt8]) {
    let parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    var served = 0
    let description = try? TargetDescription.load { annex in
        defer { served += 1 }
        guard annex == "target.xml" || served > 0 else { throw GDBRemoteError.unsupported(request: annex) }
        guard served < parts.count else { throw GDBRemoteError.errorReply(request: annex, code: 0) }
        return parts[served]
    }
    if let description {
        fuzzCheck(!description.registers.isEmpty, "a description without registers was accepted")
        for register in description.registers {
            _ = description.register(named: register.name)
        }
    }
}
