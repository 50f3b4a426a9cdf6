package import NIOCore
package import NIOHTTP1

/// The request side of an HTTP/1.1 server connection as a pure state machine: bytes in, one
/// event at a time out, bodies as slices of the bytes read. Requests framed in a way that could
/// be read two ways (RFC 9112 §6.3: a length and chunks at once, differing lengths, a transfer
/// coding that is not chunked) are refused rather than guessed at. After a request that asks
/// to change protocols it stops: what follows belongs to the next protocol unless the caller
/// resumes it.
package struct HTTPRequestParser {
    package enum Event: Equatable {
        case head(HTTPRequestHead)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case head
        case body(HTTPBodyReader, upgrades: Bool)
        /// A request asking to upgrade is complete: the bytes after it wait.
        case upgradePending
        case failed
    }

    private var state = State.head
    private var input = HTTPMessageInput()
    private let maxHeadBytes: Int

    package init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    package mutating func append(_ bytes: ByteBuffer) {
        input.append(bytes)
    }

    /// A request asked to upgrade and is complete: nothing more is read until `resume()`.
    package var isWaitingAfterUpgradeRequest: Bool {
        if case .upgradePending = state { return true }
        return false
    }

    /// The upgrade did not happen: the bytes after that request are HTTP again.
    package mutating func resume() {
        if case .upgradePending = state { state = .head }
    }

    /// The bytes not parsed yet, leaving none (handed to whatever replaces HTTP).
    package mutating func takeUnparsed() -> ByteBuffer {
        input.takeAll()
    }

    /// The next event the bytes so far make, or nil when more bytes are needed (or the parser
    /// waits after an upgrade request).
    package mutating func next() throws(HTTPWireFailure) -> Event? {
        do {
            return try step()
        } catch {
            state = .failed
            input.reset()
            throw error
        }
    }

    private mutating func step() throws(HTTPWireFailure) -> Event? {
        switch state {
        case .failed:
            throw HTTPWireFailure("the connection already failed")
        case .upgradePending:
            return nil
        case .head:
            guard let headBytes = try input.takeHead(limit: maxHeadBytes) else { return nil }
            let (head, framing) = try Self.parseHead(headBytes)
            state = .body(HTTPBodyReader(try Self.bodyFraming(framing), maxTrailerBytes: maxHeadBytes),
                          upgrades: framing.upgrades && framing.hasUpgradeHeader)
            return .head(head)
        case .body(var reader, let upgrades):
            // Taken out of the state while it reads, so it is changed in place, not copied.
            state = .failed
            switch try reader.next(&input) {
            case .data(let slice)?:
                state = .body(reader, upgrades: upgrades)
                return .body(slice)
            case .end?:
                state = upgrades ? .upgradePending : .head
                return .end
            case nil:
                state = .body(reader, upgrades: upgrades)
                return nil
            }
        }
    }

    private static func parseHead(_ buffer: ByteBuffer) throws(HTTPWireFailure) -> (HTTPRequestHead, HTTPFraming) {
        let parsed = buffer.withUnsafeReadableBytes { bytes -> Result<(HTTPRequestHead, HTTPFraming), HTTPWireFailure> in
            var lines = HTTPHeadLines(bytes)
            // A client may send empty lines before a request (RFC 9112 §2.2).
            var requestLine = lines.next()
            while let line = requestLine, line.isEmpty { requestLine = lines.next() }
            guard let requestLine, let (method, uri, version) = parseRequestLine(requestLine) else {
                return .failure(HTTPWireFailure("invalid request line"))
            }
            do throws(HTTPWireFailure) {
                let (headers, framing) = try HTTPHeaderFields.headers(&lines, in: bytes)
                return .success((HTTPRequestHead(version: version, method: method, uri: uri, headers: headers), framing))
            } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
    }

    /// "POST /v1/responses HTTP/1.1": a method token, a target without spaces or control
    /// bytes, and HTTP/1.0 or 1.1, each separated by one space.
    private static func parseRequestLine(_ line: Slice<UnsafeRawBufferPointer>) -> (HTTPMethod, String, HTTPVersion)? {
        guard let firstSpace = line.firstIndex(of: 0x20), firstSpace > line.startIndex else { return nil }
        let methodBytes = line[line.startIndex..<firstSpace]
        guard HTTPToken.isToken(UnsafeRawBufferPointer(rebasing: methodBytes)) else { return nil }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: 0x20), secondSpace > rest.startIndex else { return nil }
        let targetBytes = rest[rest.startIndex..<secondSpace]
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return nil }
        let versionBytes = UnsafeRawBufferPointer(rebasing: rest[(secondSpace + 1)...])
        let version: HTTPVersion
        if versionBytes.elementsEqual("HTTP/1.1".utf8) {
            version = .http1_1
        } else if versionBytes.elementsEqual("HTTP/1.0".utf8) {
            version = .http1_0
        } else {
            return nil
        }
        let method = HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: methodBytes), as: UTF8.self))
        return (method, String(decoding: UnsafeRawBufferPointer(rebasing: targetBytes), as: UTF8.self), version)
    }

    /// How a request's body is delimited (RFC 9112 §6.3): chunks, a length, or nothing.
    private static func bodyFraming(_ framing: HTTPFraming) throws(HTTPWireFailure) -> HTTPBodyReader.Framing {
        if let last = framing.lastTransferCoding {
            guard !framing.hasContentLength else { throw HTTPWireFailure("both content-length and transfer-encoding") }
            guard last == .chunked else { throw HTTPWireFailure("unsupported transfer-encoding") }
            return .chunked
        }
        return .length(try framing.contentLength() ?? 0)
    }
}
