package import NIOCore
import NIOHTTP1

/// The response side of an HTTP/1.1 client connection as a pure state machine: bytes in, one
/// event at a time out. Bodies come out as slices of the bytes read (no copy); only a head, a
/// chunk-size line or trailers split across reads are gathered. Written for the proxy's hot
/// path, where NIO's decoder and its part-by-part trip through the pipeline cost more than the
/// rest of an exchange.
package struct HTTPResponseParser {
    package enum Event: Equatable {
        case head(ReceivedResponseHead)
        case body(ByteBuffer)
        /// The response is complete; `keepAlive`: the connection can carry another exchange.
        case end(keepAlive: Bool)
    }

    package typealias Failure = HTTPWireFailure

    private enum State {
        /// No request is waiting for its answer: bytes here are a protocol error.
        case idle
        case head
        case body(HTTPBodyReader)
        case failed
    }

    package static let maxHeadBytes = 64 * 1024

    private var state = State.idle
    private var input = HTTPMessageInput()
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
        input.append(bytes)
    }

    /// The next event the bytes so far make, or nil when more bytes are needed.
    package mutating func next() throws(Failure) -> Event? {
        do {
            return try step()
        } catch {
            state = .failed
            input.reset()
            throw error
        }
    }

    private mutating func step() throws(Failure) -> Event? {
        while true {
            switch state {
            case .failed:
                throw Failure("the connection already failed")
            case .idle:
                guard input.readableBytes == 0 else { throw Failure("upstream sent bytes no request asked for") }
                return nil
            case .head:
                guard let headBytes = try input.takeHead(limit: Self.maxHeadBytes) else { return nil }
                let (head, framing) = try Self.parseHead(headBytes)
                // 1xx interim answers (100 Continue) are not the response.
                if head.status.code >= 100, head.status.code < 200, head.status != .switchingProtocols { continue }
                try frame(head, framing)
                return .head(head)
            case .body(var reader):
                // Taken out of the state while it reads, so it is changed in place, not copied.
                state = .failed
                let event = try reader.next(&input)
                switch event {
                case .data(let slice)?:
                    state = .body(reader)
                    return .body(slice)
                case .end?:
                    state = .idle
                    return .end(keepAlive: keepAlive)
                case nil:
                    state = .body(reader)
                    return nil
                }
            }
        }
    }

    /// The connection closed: the end of a body that runs until close, else a failure when a
    /// response was under way (nil when nothing was).
    package mutating func inputClosed() throws(Failure) -> Event? {
        switch state {
        case .idle, .failed:
            return nil
        case .body(let reader) where reader.endsWithClose:
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

    private static func parseHead(_ buffer: ByteBuffer) throws(Failure) -> (ReceivedResponseHead, HTTPFraming) {
        let parsed = buffer.withUnsafeReadableBytes { bytes -> Result<(ReceivedResponseHead, HTTPFraming), Failure> in
            var lines = HTTPHeadLines(bytes)
            guard let statusLine = lines.next() else { return .failure(Failure("empty response head")) }
            guard let (version, status) = parseStatusLine(statusLine) else { return .failure(Failure("invalid status line")) }
            do throws(HTTPWireFailure) {
                let fields = try HTTPHeaderFields(&lines)
                return .success((ReceivedResponseHead(version: version, status: status, bytes: buffer, fields: fields.fields), fields.framing))
            } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
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
    private mutating func frame(_ head: ReceivedResponseHead, _ framing: HTTPFraming) throws(Failure) {
        keepAlive = !framing.closes && (head.version == .http1_1 || framing.keepsAlive)
        let code = head.status.code
        let bodyFraming: HTTPBodyReader.Framing
        if answersHEAD || code == 204 || code == 304 || code == 101 {
            if code == 101 { keepAlive = false }
            bodyFraming = .length(0)
        } else if let last = framing.lastTransferCoding {
            bodyFraming = last == .chunked ? .chunked : .untilClose
        } else if let length = try framing.contentLength() {
            bodyFraming = .length(length)
        } else {
            bodyFraming = .untilClose
        }
        if bodyFraming == .untilClose { keepAlive = false }
        state = .body(HTTPBodyReader(bodyFraming, maxTrailerBytes: Self.maxHeadBytes))
    }
}
