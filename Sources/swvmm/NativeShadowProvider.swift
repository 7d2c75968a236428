import KVMShadow
import Shadow
import VMM

/// The executor provider of `swvmm run --shadow`'s control server: called
/// on the server's thread for each `swvmm shadow --vm` client; it makes S on
/// the dedicated vCPU the first time (and again when the last S is gone or
/// was tampered with) and hands the same executor out otherwise. A thrown
/// error's text is what the client prints.
func nativeShadowExecutorProvider(_ native: NativeShadow) -> ShadowControlServer.ExecutorProvider {
    { try native.executor().0 }
}

/// The control server's `--stop-shadow` hook: ends the current S (the next
/// run makes a new one).
func nativeShadowStopper(_ native: NativeShadow) -> ShadowControlServer.ShadowStopper {
    { native.endShadow() }
}
