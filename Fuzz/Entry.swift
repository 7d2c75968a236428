import Glibc

// libFuzzer targets over swvmm's parsers of untrusted input (see Makefile,
// `make fuzz`). One binary holds every target; SWVMM_FUZZ_TARGET picks it.
// Built with -D FUZZING and -sanitize=fuzzer, `main` runs libFuzzer's driver
// (SwiftPM points the executable's entry at this module's `main`, so
// libFuzzer's own is not used); the plain build (part of `swift build`)
// replays instead: `swvmm-fuzz TARGET FILE...` runs each file once.

/// A fuzz target: takes the input, traps (`fuzzCheck`) when an invariant breaks.
typealias FuzzTarget = @Sendable ([UInt8]) -> Void

let fuzzTargets: [String: FuzzTarget] = [
    "bzimage": fuzzKernelImage,
    "elf": fuzzKernelImage,
    "gdb-packets": fuzzGDBPackets,
    "gdb-stop-registers": fuzzStopRepliesAndRegisters,
    "target-xml": fuzzTargetDescription,
    "syscall-marshalling": fuzzSyscallMarshalling,
    "control-messages": fuzzControlMessage,
]

/// Stops the run with `message` when an invariant does not hold: libFuzzer
/// records the input that broke it.
/// Writes `text` to stderr (fd 2) without stdio's shared FILE.
func report(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}

func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        report("fuzz invariant broken: \(message())\n")
        abort()
    }
}

private let selectedTarget: FuzzTarget = {
    let name = getenv("SWVMM_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = fuzzTargets[name] else {
        report("set SWVMM_FUZZ_TARGET to one of: \(fuzzTargets.keys.sorted().joined(separator: ", "))\n")
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget(bytes)
    return 0
}

#if FUZZING
/// libFuzzer's entry for programs with their own `main` (extern "C" in
/// FuzzerDriver.cpp); pointer and integer arguments only, which Swift passes
/// as C does.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main
enum FuzzDriver {
    static func main() {
        _ = selectedTarget
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, { data, size in fuzzOneInput(data, size) }))
    }
}
#else
@main
enum Replay {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = fuzzTargets[arguments[1]] else {
            report("usage: swvmm-fuzz TARGET [FILE...]; targets: \(fuzzTargets.keys.sorted().joined(separator: ", "))\n")
            exit(2)
        }
        for path in arguments.dropFirst(2) {
            guard let file = fopen(path, "rb") else {
                report("cannot open \(path)\n")
                exit(1)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, file)
                if n <= 0 { break }
                bytes += chunk[0..<n]
            }
            fclose(file)
            target(bytes)
        }
        print("replayed \(arguments.count - 2) inputs through \(arguments[1])")
    }
}
#endif
