#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
package import NIOCore
package import NIOHTTP1

/// The response side of an HTTP/1.1 client connection as a pure state machine: bytes in, one
/// event at a time out. Bodies come out as slices of the bytes read (no copy); only a head, a
/// chunk-size line or trailers split across reads are gathered. Written for the proxy's hot
/// path, where NIO's decoder and its part-by-part trip through the pipeline cost more than the
/// rest of an exchange.
package struct HTTPResponseParser {
    package enum Event: Equatable {
        case head(HTTPResponseHead)
        case body(ByteBuffer)
        /// The response is complete; `keepAlive`: the connection can carry another exchange.
        case end(keepAlive: Bool)
    }

    package struct Failure: Error, Equatable, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = description }
    }

    private enum State {
        /// No request is waiting for its answer: bytes here are a protocol error.
        case idle
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case untilClose
        case failed
    }

    package static let maxHeadBytes = 64 * 1024
    static let maxLineBytes = 4 * 1024

    private var state = State.idle
    private var input = ByteBuffer()
    /// How far the pending head was searched for its end: a head arriving in many reads is not
    /// searched from its start again on each.
    private var headSearched = 0
    private var answersHEAD = false
    private var keepAlive = true

    package init() {}

    /// A request went out: its answer is what comes next. `toHEAD`: the answer has no body.
    package mutating func expectResponse(toHEAD: Bool) {
        answersHEAD = toHEAD
        if case .idle = state { state = .head }
    }

    /// Whether a response is under way or awaited.
    package var isExpectingResponse: Bool {
        switch state {
        case .idle, .failed: false
        default: true
        }
    }

    /// Bytes read from the connection; call `next()` until it returns nil.
    package mutating func append(_ bytes: ByteBuffer) {
        input.appendParserInput(bytes)
    }

    /// The next event the bytes so far make, or nil when more bytes are needed.
    package mutating func next() throws(Failure) -> Event? {
        while true {
            switch state {
            case .failed:
                throw Failure("the connection already failed")
            case .idle:
                guard input.readableBytes == 0 else { return try fail("upstream sent bytes no request asked for") }
                return nil
            case .head:
                guard let end = headEnd() else {
                    if input.readableBytes > Self.maxHeadBytes { return try fail("response head larger than \(Self.maxHeadBytes) bytes") }
                    return nil
                }
                headSearched = 0
                let headBytes = input.readSlice(length: end)!
                let (head, framing) = try parseHead(headBytes)
                // 1xx interim answers (100 Continue) are not the response.
                if head.status.code >= 100, head.status.code < 200, head.status != .switchingProtocols { continue }
                try frame(head, framing)
                return .head(head)
            case .fixedBody(let remaining):
                if remaining == 0 { return finishMessage() }
                guard input.readableBytes > 0 else { return nil }
                let length = min(remaining, input.readableBytes)
                state = .fixedBody(remaining: remaining - length)
                return .body(takeSlice(length))
            case .untilClose:
                guard input.readableBytes > 0 else { return nil }
                return .body(takeSlice(input.readableBytes))
            case .chunkSize:
                guard let line = try readLine() else { return nil }
                let size = try chunkSize(line)
                state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard input.readableBytes > 0 else { return nil }
                let length = min(remaining, input.readableBytes)
                state = remaining == length ? .chunkDataEnd : .chunkData(remaining: remaining - length)
                return .body(takeSlice(length))
            case .chunkDataEnd:
                guard let line = try readLine() else { return nil }
                guard line.isEmpty else { return try fail("chunk data longer than its size") }
                state = .chunkSize
            case .trailers(let bytes):
                guard let line = try readLine() else { return nil }
                if line.isEmpty { return finishMessage() }
                // Trailers are read past and dropped: nothing downstream uses them.
                let total = bytes + line.count
                guard total <= Self.maxHeadBytes else { return try fail("trailers larger than \(Self.maxHeadBytes) bytes") }
                state = .trailers(bytes: total)
            }
        }
    }

    /// The connection closed: the end of a body that runs until close, else a failure when a
    /// response was under way (nil when nothing was).
    package mutating func inputClosed() throws(Failure) -> Event? {
        switch state {
        case .idle, .failed:
            return nil
        case .untilClose:
            state = .idle
            return .end(keepAlive: false)
        case .head where input.readableBytes == 0:
            state = .failed
            throw Failure("upstream closed the connection before answering")
        default:
            state = .failed
            throw Failure("upstream closed the connection in the middle of the response")
        }
    }

    // MARK: Head

    /// The length of the head including its blank line, once all of it is here.
    private mutating func headEnd() -> Int? {
        // A line end found before without the two bytes after it is within the last three.
        let start = max(0, headSearched - 3)
        let (end, searched) = input.withUnsafeReadableBytes { bytes -> (Int?, Int) in
            var index = start
            let limit = min(bytes.count, Self.maxHeadBytes + 4)
            while index < limit {
                guard let newline = findNewline(bytes, from: index, to: limit) else { break }
                // A line ending right after the previous one (CRLF CRLF, or LF LF) ends the head.
                let next = newline + 1
                if next < bytes.count, bytes[next] == 0x0A { return (next + 1, 0) }
                if next + 1 < bytes.count, bytes[next] == 0x0D, bytes[next + 1] == 0x0A { return (next + 2, 0) }
                index = next
            }
            return (nil, limit)
        }
        headSearched = searched
        return end
    }

    /// What the framing headers of a head say, gathered while it is parsed.
    fileprivate struct Framing {
        var contentLengths: [String] = []
        var lastTransferCoding: String?
        /// `Connection: close` / `keep-alive`.
        var closes = false
        var keepsAlive = false
    }

    private mutating func parseHead(_ buffer: ByteBuffer) throws(Failure) -> (HTTPResponseHead, Framing) {
        let parsed = buffer.withUnsafeReadableBytes { bytes -> Result<(HTTPResponseHead, Framing), Failure> in
            var lines = HeadLines(bytes)
            guard let statusLine = lines.next() else { return .failure(Failure("empty response head")) }
            guard let (version, status) = Self.parseStatusLine(statusLine) else { return .failure(Failure("invalid status line")) }
            var fields: [(String, String)] = []
            fields.reserveCapacity(24)
            var framing = Framing()
            while let line = lines.next(), !line.isEmpty {
                guard let first = line.first, first != 0x20, first != 0x09 else { return .failure(Failure("folded header line")) }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { return .failure(Failure("header line without a name")) }
                let nameBytes = line[line.startIndex..<colon]
                guard nameBytes.allSatisfy(HTTPToken.isTokenByte) else { return .failure(Failure("invalid header name")) }
                let valueBytes = HTTPToken.trimmed(line[(colon + 1)...])
                guard !valueBytes.contains(where: HTTPToken.isForbiddenInValue) else { return .failure(Failure("invalid header value")) }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: nameBytes), as: UTF8.self)
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: valueBytes), as: UTF8.self)
                framing.note(name: name, value: value)
                fields.append((name, value))
            }
            return .success((HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(fields)), framing))
        }
        switch parsed {
        case .success(let head): return head
        case .failure(let failure): return try fail(failure.description)
        }
    }

    private static func parseStatusLine(_ line: Slice<UnsafeRawBufferPointer>) -> (HTTPVersion, HTTPResponseStatus)? {
        // "HTTP/1.1 200 OK": version, a space, three digits, then an optional reason.
        guard line.count >= 12, UnsafeRawBufferPointer(rebasing: line.prefix(7)).elementsEqual("HTTP/1.".utf8) else { return nil }
        let base = line.startIndex
        let minor = line[base + 7]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1"), line[base + 8] == 0x20 else { return nil }
        var code = 0
        for byte in line[(base + 9)..<(base + 12)] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard code >= 100 else { return nil }
        if line.count > 12, line[base + 12] != 0x20 { return nil }
        let reason = line.count > 13 ? String(decoding: UnsafeRawBufferPointer(rebasing: line[(base + 13)...]), as: UTF8.self) : ""
        return (minor == UInt8(ascii: "1") ? .http1_1 : .http1_0, HTTPResponseStatus(statusCode: code, reasonPhrase: reason))
    }

    /// How the body after `head` is delimited (RFC 9112 §6.3).
    private mutating func frame(_ head: HTTPResponseHead, _ framing: Framing) throws(Failure) {
        keepAlive = !framing.closes && (head.version == .http1_1 || framing.keepsAlive)
        let code = head.status.code
        if answersHEAD || code == 204 || code == 304 || code == 101 {
            if code == 101 { keepAlive = false }
            state = .fixedBody(remaining: 0)
            return
        }
        if let last = framing.lastTransferCoding {
            if last == "chunked" {
                state = .chunkSize
            } else {
                keepAlive = false
                state = .untilClose
            }
            return
        }
        if let first = framing.contentLengths.first {
            guard framing.contentLengths.allSatisfy({ $0 == first }), first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(first) else {
                return try fail("invalid content-length")
            }
            state = .fixedBody(remaining: length)
            return
        }
        keepAlive = false
        state = .untilClose
    }

    // MARK: Chunks

    private mutating func chunkSize(_ line: ArraySlice<UInt8>) throws(Failure) -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
            case UInt8(ascii: ";"), 0x20, 0x09: // extensions and spaces before them are ignored
                guard digits > 0 else { return try fail("invalid chunk size") }
                return size
            default:
                return try fail("invalid chunk size")
            }
            digits += 1
            guard digits <= 15 else { return try fail("chunk size too large") }
            size = size * 16 + value
        }
        guard digits > 0 else { return try fail("invalid chunk size") }
        return size
    }

    // MARK: Helpers

    /// One line without its line ending, or nil when its end has not arrived.
    private mutating func readLine() throws(Failure) -> ArraySlice<UInt8>? {
        let found = input.withUnsafeReadableBytes { bytes in findNewline(bytes, from: 0, to: bytes.count) }
        guard let newline = found else {
            if input.readableBytes > Self.maxLineBytes { return try fail("line longer than \(Self.maxLineBytes) bytes") }
            return nil
        }
        guard newline <= Self.maxLineBytes else { return try fail("line longer than \(Self.maxLineBytes) bytes") }
        var line = input.readBytes(length: newline + 1)![...]
        line.removeLast()
        if line.last == 0x0D { line.removeLast() }
        return line
    }

    private mutating func takeSlice(_ length: Int) -> ByteBuffer {
        let slice = input.readSlice(length: length)!
        input.releaseIfConsumed()
        return slice
    }

    private mutating func finishMessage() -> Event {
        state = .idle
        input.releaseIfConsumed()
        return .end(keepAlive: keepAlive)
    }

    private mutating func fail<T>(_ message: String) throws(Failure) -> T {
        state = .failed
        headSearched = 0
        input = ByteBuffer()
        throw Failure(message)
    }
}

private func findNewline(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
    guard start < end, let base = bytes.baseAddress else { return nil }
    guard let found = memchr(base + start, 0x0A, end - start) else { return nil }
    return base.distance(to: UnsafeRawPointer(found))
}

/// The lines of a complete head, without their line endings, where they lie.
private struct HeadLines {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func next() -> Slice<UnsafeRawBufferPointer>? {
        guard position < bytes.count else { return nil }
        let end = findNewline(bytes, from: position, to: bytes.count) ?? bytes.count
        var line = bytes[position..<end]
        position = end + 1
        if line.last == 0x0D { line = line.dropLast() }
        return line
    }
}

extension HTTPResponseParser.Framing {
    /// Records a framing header (`content-length`, `transfer-encoding`, `connection`); the
    /// length compared first settles every other header, and nothing is copied to compare.
    mutating func note(name: String, value: String) {
        switch name.utf8.count {
        case 14 where HTTPToken.name(name, is: "content-length"):
            contentLengths.append(value)
        case 17 where HTTPToken.name(name, is: "transfer-encoding"):
            if let last = value.split(separator: ",").last { lastTransferCoding = last.trimmingSpaces.lowercased() }
        case 10 where HTTPToken.name(name, is: "connection"):
            for token in value.split(separator: ",") {
                let token = token.trimmingSpaces
                if HTTPToken.name(token, is: "close") { closes = true }
                if HTTPToken.name(token, is: "keep-alive") { keepsAlive = true }
            }
        default:
            break
        }
    }
}

private extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
