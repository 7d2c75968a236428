// Placeholder entry point; the command line is built in Sources/swvmm/*.swift.
print("swvmm")
