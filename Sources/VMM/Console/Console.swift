import Glibc
import Synchronization

/// Connects the host terminal to a UART: stdin bytes go to the guest, and the
/// escape Ctrl-A x asks to quit (see `ConsoleEscape`). Output goes the other way
/// through `ConsoleOutput`.
///
/// When the input is a terminal, `start()` switches it to raw mode (no echo, no
/// line editing, no signals from Ctrl-C: they belong to the guest; output
/// processing is left on so the VMM's own messages still print properly) and
/// `restore()` puts the saved settings back. When the input is not a terminal
/// (a pipe or file) it is read as-is, delivered without loss (waiting while the
/// UART is full), escapes are not interpreted, and EOF just stops reading.
///
/// `restore()` is idempotent and async-signal-safe (an atomic flag, tcsetattr and
/// write(2) only), so the VMM may call it on every exit path including from a
/// signal handler. `stop()` also joins the reader thread; `deinit` calls `stop()`.
public final class TerminalConsole: @unchecked Sendable {
    /// Bytes read from the input per read(2).
    fileprivate static let readChunk = 256
    /// How long the pipe reader waits for room in the UART before offering again.
    fileprivate static let retryMilliseconds: Int32 = 1

    private let context: ReaderContext
    private let savedAttributes: UnsafeMutablePointer<termios>
    private let rawModeActive = Atomic<Bool>(false)
    private let startLock = Mutex(())
    private var thread: pthread_t?

    /// Whether the input descriptor is a terminal (raw mode and escapes apply).
    public let isTerminal: Bool

    /// - Parameters:
    ///   - input: receives host input (the UART).
    ///   - inputFD: the descriptor to read; not closed by the console.
    ///   - onQuit: called on the reader thread when the user types Ctrl-A x.
    /// - Throws: `ConsoleError.wakePipe` if the internal pipe cannot be created.
    public init(input: ConsoleInputSink, inputFD: Int32 = STDIN_FILENO,
                onQuit: @escaping () -> Void) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ConsoleError.wakePipe(errno: errno) }
        for fd in fds {
            // Not inherited by children; never block the signal-safe restore() on a full pipe.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        isTerminal = isatty(inputFD) == 1
        context = ReaderContext(sink: input, inputFD: inputFD, wakeRead: fds[0], wakeWrite: fds[1],
                                isTerminal: isTerminal, onQuit: onQuit)
        savedAttributes = .allocate(capacity: 1)
        savedAttributes.initialize(to: termios())
    }

    deinit {
        stop()
        close(context.wakeRead)
        close(context.wakeWrite)
        savedAttributes.deinitialize(count: 1)
        savedAttributes.deallocate()
    }

    /// Puts a terminal input into raw mode and starts the reader thread.
    /// - Throws: `ConsoleError` if the terminal settings or the thread fail (the
    ///   terminal is left as it was).
    public func start() throws {
        try startLock.withLock { _ in
            guard thread == nil, !context.stopping.load(ordering: .acquiring) else {
                throw ConsoleError.alreadyStarted
            }
            if isTerminal { try enterRawMode() }
            var handle = pthread_t()
            let argument = Unmanaged.passRetained(context).toOpaque()
            let result = pthread_create(&handle, nil, { argument in
                guard let argument else { return nil }
                let context = Unmanaged<ReaderContext>.fromOpaque(argument).takeRetainedValue()
                context.run()
                return nil
            }, argument)
            guard result == 0 else {
                Unmanaged<ReaderContext>.fromOpaque(argument).release()
                restore()
                throw ConsoleError.readerThread(errno: result)
            }
            thread = handle
        }
    }

    /// Gives the terminal back: restores its saved settings and tells the reader to
    /// stop. Safe to call any number of times, from any thread or a signal handler.
    public func restore() {
        context.requestStop()
        if rawModeActive.exchange(false, ordering: .acquiringAndReleasing) {
            _ = tcsetattr(context.inputFD, TCSANOW, savedAttributes)
        }
    }

    /// `restore()`, then waits for the reader thread to finish (unless called from
    /// it, e.g. inside `onQuit`).
    public func stop() {
        restore()
        let handle: pthread_t? = startLock.withLock { _ in
            defer { thread = nil }
            return thread
        }
        guard let handle else { return }
        if pthread_equal(handle, pthread_self()) != 0 {
            pthread_detach(handle)
        } else {
            pthread_join(handle, nil)
        }
    }

    private func enterRawMode() throws {
        let fd = context.inputFD
        guard tcgetattr(fd, savedAttributes) == 0 else {
            throw ConsoleError.terminalAttributes(operation: "tcgetattr", fd: fd, errno: errno)
        }
        var raw = savedAttributes.pointee
        cfmakeraw(&raw)
        // Keep output processing (cfmakeraw clears OPOST) so host-side "\n" still returns the carriage.
        raw.c_oflag = savedAttributes.pointee.c_oflag
        guard tcsetattr(fd, TCSANOW, &raw) == 0 else {
            throw ConsoleError.terminalAttributes(operation: "tcsetattr", fd: fd, errno: errno)
        }
        rawModeActive.store(true, ordering: .releasing)
    }
}

/// What the reader thread owns; separate from `TerminalConsole` so the thread does
/// not keep the console alive (its deinit is what stops the thread).
private final class ReaderContext: @unchecked Sendable {
    let sink: ConsoleInputSink
    let inputFD: Int32
    let wakeRead: Int32
    let wakeWrite: Int32
    let isTerminal: Bool
    let onQuit: () -> Void
    let stopping = Atomic<Bool>(false)

    init(sink: ConsoleInputSink, inputFD: Int32, wakeRead: Int32, wakeWrite: Int32,
         isTerminal: Bool, onQuit: @escaping () -> Void) {
        self.sink = sink; self.inputFD = inputFD; self.wakeRead = wakeRead
        self.wakeWrite = wakeWrite; self.isTerminal = isTerminal; self.onQuit = onQuit
    }

    /// Async-signal-safe: an atomic store and write(2).
    func requestStop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    var stopRequested: Bool { stopping.load(ordering: .acquiring) }

    func run() {
        // Leave signal delivery to the VMM's other threads.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)

        var escape = ConsoleEscape()
        var buffer = [UInt8](repeating: 0, count: TerminalConsole.readChunk)
        while !stopRequested {
            guard waitReadable(timeoutMilliseconds: -1) else { return }
            let count = buffer.withUnsafeMutableBytes { read(inputFD, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            if count == 0 { return } // EOF (or a hung-up terminal)
            let bytes = buffer[..<count]
            if isTerminal {
                let (forward, quit) = escape.filter(bytes)
                if !forward.isEmpty { sink.enqueueInput(forward) }
                if quit { onQuit(); return }
            } else {
                deliverWithoutLoss(bytes)
            }
        }
    }

    /// Offers `bytes` until the sink took them all or a stop was requested.
    private func deliverWithoutLoss(_ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty && !stopRequested {
            let accepted = sink.offerInput(rest)
            rest = rest.dropFirst(accepted)
            if accepted == 0 { _ = waitWake(timeoutMilliseconds: TerminalConsole.retryMilliseconds) }
        }
    }

    /// Waits for input or a stop; false when stopping.
    private func waitReadable(timeoutMilliseconds: Int32) -> Bool {
        var entries = [pollfd(fd: inputFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&entries, 2, timeoutMilliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || entries[1].revents != 0 || stopRequested { return false }
            // POLLHUP/POLLERR also end up in read(), which reports EOF or the error.
            return entries[0].revents != 0
        }
    }

    /// Sleeps up to `timeoutMilliseconds` unless a stop arrives.
    private func waitWake(timeoutMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, timeoutMilliseconds) > 0
    }
}
