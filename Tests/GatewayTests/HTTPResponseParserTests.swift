import NIOCore
import NIOHTTP1
import Testing
@testable import HTTPWire
import UpstreamHTTP

/// The upstream response parser on its own: every framing, every split of the bytes across
/// reads, and the malformed answers it must refuse.
@Suite(.timeLimit(.minutes(1))) struct HTTPResponseParserTests {
    /// What a whole response parses into: heads, the body joined, and how it ended.
    struct Parsed: Equatable {
        var heads: [HTTPResponseHead] = []
        /// The same heads as read, with their bytes.
        var received: [ReceivedResponseHead] = []
        var body = ""
        var ends: [Bool] = []
    }

    /// Feeds `text` in pieces of `piece` bytes (0: at once), then the close when `closes`.
    static func parse(_ text: String, piece: Int = 0, toHEAD: Bool = false, closes: Bool = false, responses: Int = 1) throws -> Parsed {
        var parser = HTTPResponseParser()
        var parsed = Parsed()
        parser.expectResponse(toHEAD: toHEAD)
        let bytes = Array(text.utf8)
        let step = piece == 0 ? max(bytes.count, 1) : piece
        var offset = 0
        func drain() throws {
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    parsed.heads.append(head.head)
                    parsed.received.append(head)
                case .body(let buffer): parsed.body += String(buffer: buffer)
                case .end(let keepAlive):
                    parsed.ends.append(keepAlive)
                    if parsed.ends.count < responses { parser.expectResponse(toHEAD: toHEAD) }
                }
            }
        }
        while offset < bytes.count {
            parser.append(ByteBuffer(bytes: bytes[offset..<min(offset + step, bytes.count)]))
            offset += step
            try drain()
        }
        if closes, case .end(let keepAlive)? = try parser.inputClosed() { parsed.ends.append(keepAlive) }
        return parsed
    }

    static let lengthResponse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-codex-primary-used-percent:  12.5 \r\ncontent-length: 11\r\n\r\nhello world"
    static let chunkedResponse = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"

    @Test func contentLengthBodyInEverySplit() throws {
        for piece in [0, 1, 2, 3, 7, 16] {
            let parsed = try Self.parse(Self.lengthResponse, piece: piece)
            #expect(parsed.body == "hello world", "piece \(piece)")
            #expect(parsed.ends == [true])
            let head = try #require(parsed.heads.first)
            #expect(head.status == .ok && head.version == .http1_1)
            #expect(head.headers.first(name: "x-codex-primary-used-percent") == "12.5")
            #expect(head.headers.first(name: "Content-Type") == "text/event-stream")
        }
    }

    @Test func aHeaderValuePrefixIsReadFromTheBytesInAnyCase() throws {
        func head(_ lines: String) throws -> ReceivedResponseHead {
            try #require(try Self.parse("HTTP/1.1 200 OK\r\n\(lines)content-length: 0\r\n\r\n").received.first)
        }
        let eventStream = try head("X-Other: text/event-stream\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nContent-Type: application/json\r\n")
        #expect(eventStream.first(name: "content-type", hasPrefix: "text/event-stream"))
        // The first value counts, as with `first(name:)`; another header's value does not.
        let json = try head("x-other: text/event-stream\r\ncontent-type: application/json\r\ncontent-type: text/event-stream\r\n")
        #expect(!json.first(name: "content-type", hasPrefix: "text/event-stream"))
        #expect(!(try head("x-other: text/event-stream\r\n")).first(name: "content-type", hasPrefix: "text/event-stream"))
        #expect(!(try head("content-type: text/event\r\n")).first(name: "content-type", hasPrefix: "text/event-stream"))
        #expect(!(try head("content-type:\r\n")).first(name: "content-type", hasPrefix: "text/event-stream"))
    }

    @Test func chunkedBodyWithExtensionsAndTrailersInEverySplit() throws {
        for piece in [0, 1, 2, 5, 9] {
            let parsed = try Self.parse(Self.chunkedResponse, piece: piece)
            #expect(parsed.body == "hello world", "piece \(piece)")
            #expect(parsed.ends == [true])
        }
    }

    @Test func bareLineFeedsAreAccepted() throws {
        let parsed = try Self.parse("HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
        #expect(parsed.body == "ok" && parsed.ends == [true])
    }

    @Test func interimAnswersAreSkipped() throws {
        let parsed = try Self.parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n", piece: 3)
        #expect(parsed.heads.map(\.status) == [.created])
        #expect(parsed.ends == [true])
    }

    @Test func answersWithoutBodies() throws {
        let head = try Self.parse("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", toHEAD: true)
        #expect(head.body.isEmpty && head.ends == [true])
        let noContent = try Self.parse("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(noContent.ends == [true])
        let notModified = try Self.parse("HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\n\r\n")
        #expect(notModified.ends == [true] && notModified.heads.first?.headers.first(name: "etag") == "\"a\"")
    }

    @Test func bodyUntilCloseEndsAtTheCloseAndIsNotKeptAlive() throws {
        let parsed = try Self.parse("HTTP/1.1 200 OK\r\n\r\nall of it", piece: 4, closes: true)
        #expect(parsed.body == "all of it")
        #expect(parsed.ends == [false])
    }

    @Test func keepAliveFollowsVersionAndConnectionHeader() throws {
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n").ends == [false])
        #expect(try Self.parse("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").ends == [false])
        #expect(try Self.parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n").ends == [true])
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nconnection: x-other,\tCLOSE \r\ncontent-length: 0\r\n\r\n").ends == [false])
        #expect(try Self.parse("HTTP/1.0 200 OK\r\nconnection: closed, keep-alive-ish\r\ncontent-length: 0\r\n\r\n").ends == [false],
                "tokens are whole elements")
    }

    @Test func twoResponsesOnOneConnection() throws {
        let parsed = try Self.parse(Self.lengthResponse + Self.chunkedResponse, piece: 5, responses: 2)
        #expect(parsed.heads.count == 2)
        #expect(parsed.body == "hello worldhello world")
        #expect(parsed.ends == [true, true])
    }

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n;x\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nabEXTRA",
    ])
    func malformedAnswersAreRefused(_ text: String) {
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse(text) }
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse(text, piece: 1) }
    }

    @Test func anOversizedHeadIsRefusedWithoutWaitingForItsEnd() {
        let huge = "HTTP/1.1 200 OK\r\nx-big: " + String(repeating: "a", count: HTTPResponseParser.maxHeadBytes + 10)
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse(huge, piece: 4096) }
    }

    @Test func anEndlessChunkSizeLineIsRefused() {
        let text = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 10_000)
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse(text, piece: 1000) }
    }

    @Test func closeInTheMiddleIsAFailureAndAnIdleCloseIsNot() throws {
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", closes: true) }
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse("HTTP/1.1 200 O", closes: true) }
        #expect(throws: HTTPResponseParser.Failure.self) { try Self.parse("", closes: true) }
        var idle = HTTPResponseParser()
        #expect(try idle.inputClosed() == nil)
    }

    @Test func bytesNoRequestAskedForAreRefused() {
        var parser = HTTPResponseParser()
        parser.append(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"))
        #expect(throws: HTTPResponseParser.Failure.self) { try parser.next() }
    }

    // MARK: Request writer

    @Test func requestsAreWrittenWithTheirLengthAsFraming() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/backend-api/codex/responses?x=1")
        head.headers.add(name: "Host", value: "chatgpt.com")
        head.headers.add(name: "Transfer-Encoding", value: "chunked")
        head.headers.add(name: "content-length", value: "999")
        var bytes = ByteBuffer()
        try UpstreamRequestWriter.write(head, body: ByteBuffer(string: "{}"), into: &bytes)
        #expect(String(buffer: bytes) == "POST /backend-api/codex/responses?x=1 HTTP/1.1\r\nHost: chatgpt.com\r\ncontent-length: 2\r\n\r\n{}")
        var get = ByteBuffer()
        try UpstreamRequestWriter.write(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/m"), body: nil, into: &get)
        #expect(String(buffer: get) == "GET /m HTTP/1.1\r\n\r\n")
    }

    @Test func headersThatWouldBreakTheHeadAreRefused() {
        for (name, value) in [("x-a", "1\r\nx-injected: 1"), ("x-a", "1\n"), ("bad name", "1"), ("", "1"), ("x-a", "a\u{0}b")] {
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            head.headers.add(name: name, value: value)
            var bytes = ByteBuffer()
            #expect(throws: UpstreamRequestWriter.InvalidHeader.self) { try UpstreamRequestWriter.write(head, body: nil, into: &bytes) }
        }
    }
}
