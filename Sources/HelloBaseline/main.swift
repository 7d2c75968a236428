// The baseline `swvmm bench boot` divides swvmm's resident memory by (the
// goal is swvmm <= 2x): a Swift hello-world. It also prints its own peak RSS
// (VmHWM) because the parent cannot measure it from outside: wait4's
// ru_maxrss charges a posix_spawn'ed child with the parent's memory.
import Glibc

print("hello, world")

let file = fopen("/proc/self/status", "r")
var line = [CChar](repeating: 0, count: 256)
while let file, fgets(&line, Int32(line.count), file) != nil {
    let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if text.hasPrefix("VmHWM:") { print("peak-rss-kb=\(text.filter(\.isNumber))") }
}
