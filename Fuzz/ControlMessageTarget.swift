import Shadow

// One packet from the control socket's peer (`swvmm shadow --vm` and the VM's
// swvmm do not trust each other's bytes). An accepted message is exactly
// what encoding it gives back: nothing in it was guessed or cut.

func fuzzControlMessage(_ bytes: [UInt8]) {
    guard let message = try? ControlMessage.decode(bytes) else { return }
    let again = try? message.encoded()
    fuzzCheck(again == bytes, "decode then encode changed the message \(message)")
}
