import GDBRemote

// The GDB remote packet layer (framing, checksums, escapes, run-length),
// stop replies, thread ids, `g` register blocks and QEMU's monitor registers.

func fuzzGDBPackets(_ bytes: [UInt8]) {
    for packet in GDBRemoteFuzzing.packets(inStream: bytes) {
        fuzzCheck(packet.count <= GDBRemoteFuzzing.packetLimit, "a decoded packet of \(packet.count) bytes passed the limit")
    }
    // Whatever the payload, framing it and reading it back gives it again.
    let payload = Array(bytes.prefix(2048))
    do {
        let back = try GDBRemoteFuzzing.roundTrip(payload)
        fuzzCheck(back == payload, "encode/decode changed \(payload) into \(back)")
    } catch {
        fuzzCheck(false, "an encoded payload did not decode: \(error)")
    }
}

func fuzzStopRepliesAndRegisters(_ bytes: [UInt8]) {
    _ = GDBRemoteFuzzing.stopReply(bytes)
    if let thread = GDBRemoteFuzzing.threadID(bytes) {
        // What we print for a thread parses back to the same thread.
        fuzzCheck(GDBRemoteFuzzing.threadID(Array(thread.utf8)) == thread, "thread id \(thread) does not round-trip")
    }
    if let block = GDBRemoteFuzzing.registerBlock(bytes) {
        fuzzCheck(block.count * 2 == bytes.count, "register block of \(block.count) bytes from \(bytes.count) hex digits")
    }
    let text = String(decoding: bytes, as: UTF8.self)
    for cpu in 0..<3 { _ = GDBRemoteFuzzing.monitorIDTRegister(text, cpu: cpu) }
}
