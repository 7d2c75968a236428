import Glibc

/// Writes all of `bytes` to `fd`: the one write-everything loop. Retries on
/// EINTR and short writes, and waits with poll(2) while a non-blocking
/// descriptor (one shared with another program) is full. Returns nil once
/// everything is written, or the errno that stopped it (EIO for a write that
/// wrote nothing). Async-signal-safe: only write(2) and poll(2).
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    guard let base = bytes.baseAddress else { return nil }
    var done = 0
    while done < bytes.count {
        let written = write(fd, base + done, bytes.count - done)
        if written > 0 { done += written; continue }
        let error = written < 0 ? errno : EIO
        if error == EINTR { continue }
        if error == EAGAIN || error == EWOULDBLOCK {
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&entry, 1, -1)
            continue
        }
        return error
    }
    return nil
}

/// Writes all of `text`'s UTF-8 to `fd` (see `writeAll(_:_:)`).
@discardableResult
public func writeAll(_ fd: Int32, _ text: String) -> Int32? {
    var text = text
    return text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
}
