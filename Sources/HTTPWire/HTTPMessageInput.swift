#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
package import NIOCore

/// The unread bytes of one side of an HTTP/1.1 connection, as both parsers take them: a head
/// once its blank line is here, a line (chunk sizes, trailers), or body bytes as slices of what
/// was read, never copied.
package struct HTTPMessageInput {
    private var buffer = ByteBuffer()
    /// How far the pending head was searched for its end: a head arriving in many reads is not
    /// searched from its start again on each.
    private var headSearched = 0

    package init() {}

    package var readableBytes: Int { buffer.readableBytes }

    package mutating func append(_ bytes: ByteBuffer) {
        buffer.appendParserInput(bytes)
    }

    /// Everything unread, leaving nothing (what follows an upgrade belongs to the next protocol).
    package mutating func takeAll() -> ByteBuffer {
        defer { buffer = ByteBuffer() }
        return buffer
    }

    package mutating func reset() {
        buffer = ByteBuffer()
        headSearched = 0
    }

    /// The head including its blank line once all of it is here; nil while more is needed.
    package mutating func takeHead(limit: Int) throws(HTTPWireFailure) -> ByteBuffer? {
        // A line end found before without the two bytes after it is within the last three.
        let start = max(0, headSearched - 3)
        let (end, searched) = buffer.withUnsafeReadableBytes { bytes -> (Int?, Int) in
            var index = start
            let searchLimit = min(bytes.count, limit + 4)
            while index < searchLimit {
                guard let newline = HTTPLines.findNewline(bytes, from: index, to: searchLimit) else { break }
                // A line ending right after the previous one (CRLF CRLF, or LF LF) ends the head.
                let next = newline + 1
                if next < bytes.count, bytes[next] == 0x0A { return (next + 1, 0) }
                if next + 1 < bytes.count, bytes[next] == 0x0D, bytes[next + 1] == 0x0A { return (next + 2, 0) }
                index = next
            }
            return (nil, searchLimit)
        }
        headSearched = searched
        guard let end else {
            if buffer.readableBytes > limit { throw HTTPWireFailure("head larger than \(limit) bytes") }
            return nil
        }
        guard end <= limit + 4 else { throw HTTPWireFailure("head larger than \(limit) bytes") }
        return buffer.readSlice(length: end)
    }

    /// One line without its line ending, or nil when its end has not arrived.
    package mutating func readLine(limit: Int) throws(HTTPWireFailure) -> ArraySlice<UInt8>? {
        let found = buffer.withUnsafeReadableBytes { bytes in HTTPLines.findNewline(bytes, from: 0, to: bytes.count) }
        guard let newline = found else {
            if buffer.readableBytes > limit { throw HTTPWireFailure("line longer than \(limit) bytes") }
            return nil
        }
        guard newline <= limit else { throw HTTPWireFailure("line longer than \(limit) bytes") }
        var line = buffer.readBytes(length: newline + 1)![...]
        line.removeLast()
        if line.last == 0x0D { line.removeLast() }
        return line
    }

    /// Up to `length` bytes as a slice of what was read; nil when nothing is unread.
    package mutating func take(upTo length: Int) -> ByteBuffer? {
        guard buffer.readableBytes > 0 else { return nil }
        let slice = buffer.readSlice(length: min(length, buffer.readableBytes))!
        buffer.releaseIfConsumed()
        return slice
    }

    package mutating func releaseIfConsumed() {
        buffer.releaseIfConsumed()
    }
}

/// Line ends in a head, found with `memchr`.
package enum HTTPLines {
    package static func findNewline(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        guard start < end, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x0A, end - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}

/// The lines of a complete head, without their line endings, where they lie.
package struct HTTPHeadLines {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    package init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    package mutating func next() -> Slice<UnsafeRawBufferPointer>? {
        guard position < bytes.count else { return nil }
        let end = HTTPLines.findNewline(bytes, from: position, to: bytes.count) ?? bytes.count
        var line = bytes[position..<end]
        position = end + 1
        if line.last == 0x0D { line = line.dropLast() }
        return line
    }
}
