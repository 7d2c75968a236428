import Guest
import Glibc

/// Why the terminal console could not start.
public enum ConsoleError: Error, Equatable, CustomStringConvertible {
    /// tcgetattr/tcsetattr on the input terminal failed.
    case terminalAttributes(operation: String, fd: Int32, errno: Int32)
    /// The wake-up pipe for the reader thread could not be made.
    case wakePipe(errno: Int32)
    /// pthread_create failed (its return value is the error number).
    case readerThread(errno: Int32)
    /// `start()` was called twice, or after `restore()`/`stop()` (a console runs once).
    case alreadyStarted

    public var description: String {
        switch self {
        case let .terminalAttributes(operation, fd, code):
            return "\(operation) on fd \(fd) failed: \(errnoText(code))"
        case let .wakePipe(code):
            return "cannot create the console's wake-up pipe: \(errnoText(code))"
        case let .readerThread(code):
            return "cannot start the console input thread: \(errnoText(code))"
        case .alreadyStarted:
            return "the terminal console was already started (or stopped); make a new one"
        }
    }
}
