import ArgumentParser
import Glibc
import Shadow
import VMM

/// Runs `body`; any error becomes one line on stderr ("swvmm: ...") and exit
/// status 1, never a Swift runtime trap or a stack of framework text.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("swvmm: \(error)")
        throw ExitCode(ExitStatus.failure)
    }
}

/// Writes `message` and a newline to stderr.
func printError(_ message: String) {
    Supervisor.writeToStandardError(message)
}
