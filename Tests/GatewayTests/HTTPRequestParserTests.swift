import HTTPWire
import NIOCore
import NIOHTTP1
import Testing

/// The client-side request parser on its own: every framing a client may use, every split of
/// the bytes across reads, requests one after another, the pause after an upgrade request, and
/// the malformed and ambiguous requests it must refuse.
@Suite(.timeLimit(.minutes(1))) struct HTTPRequestParserTests {
    struct Parsed: Equatable {
        var heads: [HTTPRequestHead] = []
        var bodies: [String] = []
        var ends = 0
    }

    /// Feeds `text` in pieces of `piece` bytes (0: at once) and collects what comes out.
    static func parse(_ text: String, piece: Int = 0, maxHeadBytes: Int = 64 * 1024) throws(HTTPWireFailure) -> (Parsed, HTTPRequestParser) {
        var parser = HTTPRequestParser(maxHeadBytes: maxHeadBytes)
        var parsed = Parsed()
        let bytes = Array(text.utf8)
        let step = piece == 0 ? max(bytes.count, 1) : piece
        var offset = 0
        while offset < bytes.count {
            parser.append(ByteBuffer(bytes: bytes[offset..<min(offset + step, bytes.count)]))
            offset += step
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    parsed.heads.append(head)
                    parsed.bodies.append("")
                case .body(let buffer): parsed.bodies[parsed.bodies.count - 1] += String(buffer: buffer)
                case .end: parsed.ends += 1
                }
            }
        }
        return (parsed, parser)
    }

    static let post = "POST /v1/responses?x=1 HTTP/1.1\r\nHost: pool\r\nAuthorization: Bearer  abc \r\nContent-Length: 11\r\n\r\nhello world"
    static let chunked = "POST /v1/responses HTTP/1.1\r\nhost: pool\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"

    @Test func aBodyOfGivenLengthInEverySplit() throws {
        for piece in [0, 1, 2, 3, 7, 16] {
            let (parsed, _) = try Self.parse(Self.post, piece: piece)
            #expect(parsed.bodies == ["hello world"] && parsed.ends == 1, "piece \(piece)")
            let head = try #require(parsed.heads.first)
            #expect(head.method == .POST && head.uri == "/v1/responses?x=1" && head.version == .http1_1)
            #expect(head.headers.first(name: "authorization") == "Bearer  abc")
            #expect(head.headers.first(name: "host") == "pool")
        }
    }

    @Test func aChunkedBodyWithExtensionsAndTrailersInEverySplit() throws {
        for piece in [0, 1, 2, 5, 13] {
            let (parsed, _) = try Self.parse(Self.chunked, piece: piece)
            #expect(parsed.bodies == ["hello world"] && parsed.ends == 1, "piece \(piece)")
        }
    }

    @Test func framingHeadersAreReadInAnyCaseWithRepeatsThatAgree() throws {
        // The same length twice (the same text), leading zeros, and codings as a list whose last is chunked.
        let repeated = "POST / HTTP/1.1\r\nContent-Length: 005\r\ncontent-length: 005\r\n\r\nhello"
        #expect(try Self.parse(repeated).0.bodies == ["hello"])
        let listed = "POST / HTTP/1.1\r\nTransfer-Encoding: ,  Chunked ,\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        #expect(try Self.parse(listed, piece: 3).0.bodies == ["hello"])
        let upgrade = "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
        let (parsed, parser) = try Self.parse(upgrade)
        #expect(parsed.heads.count == 1 && parsed.ends == 1)
        #expect(parser.isWaitingAfterUpgradeRequest)
    }

    @Test func requestsOneAfterAnotherInOneRead() throws {
        let get = "GET /status HTTP/1.1\r\nhost: pool\r\n\r\n"
        let (parsed, _) = try Self.parse(get + Self.post + Self.chunked + "\r\n" + get)
        #expect(parsed.heads.map(\.uri) == ["/status", "/v1/responses?x=1", "/v1/responses", "/status"])
        #expect(parsed.bodies == ["", "hello world", "hello world", ""])
        #expect(parsed.ends == 4)
    }

    @Test func versionsMethodsAndBareLineFeeds() throws {
        let (parsed, _) = try Self.parse("DELETE /admin/users/a HTTP/1.0\nconnection: keep-alive\n\n")
        let head = try #require(parsed.heads.first)
        #expect(head.method == .DELETE && head.version == .http1_0 && head.isKeepAlive)
        let (custom, _) = try Self.parse("PURGE / HTTP/1.1\r\n\r\n")
        #expect(custom.heads.first?.method == .RAW(value: "PURGE"))
    }

    @Test func afterAnUpgradeRequestTheRestWaitsUntilResumedOrTaken() throws {
        let upgrade = "GET /v1/responses HTTP/1.1\r\nHost: pool\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
        let frame = "\u{81}\u{05}hello"
        var (parsed, parser) = try Self.parse(upgrade + frame)
        #expect(parsed.heads.count == 1 && parsed.ends == 1)
        #expect(parser.isWaitingAfterUpgradeRequest)
        #expect(try parser.next() == nil)
        #expect(String(buffer: parser.takeUnparsed()) == frame)

        // Not upgraded: the connection goes on as HTTP.
        (parsed, parser) = try Self.parse(upgrade + "GET /status HTTP/1.1\r\n\r\n")
        #expect(parsed.heads.count == 1)
        parser.resume()
        let next = try parser.next()
        guard case .head(let head)? = next else { Issue.record("expected the next request, got \(String(describing: next))"); return }
        #expect(head.uri == "/status")

        // `Upgrade` without `Connection: upgrade` is not a request to upgrade.
        (parsed, parser) = try Self.parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /status HTTP/1.1\r\n\r\n")
        #expect(parsed.heads.count == 2 && !parser.isWaitingAfterUpgradeRequest)
    }

    @Test(arguments: [
        "POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello ",
        "POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 1e3\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 05\r\n\r\nhello",
        "POST / HTTP/1.1\r\ncontent-length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length:\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 5, 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked, ,\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /a\u{01}b HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: value\r\n\r\n",
        "GET / HTTP/1.1\r\n: no name\r\n\r\n",
        "GET / HTTP/1.1\r\nbad name: value\r\n\r\n",
        "GET / HTTP/1.1\r\nno-colon\r\n\r\n",
        "GET / HTTP/1.1\r\nx: a\u{0}b\r\n\r\n",
    ])
    func malformedAndAmbiguousRequestsAreRefused(_ text: String) {
        #expect(throws: HTTPWireFailure.self) { try Self.parse(text) }
        #expect(throws: HTTPWireFailure.self) { try Self.parse(text, piece: 1) }
    }

    @Test func aFailedParserRefusesEverythingAfter() throws {
        var parser = HTTPRequestParser(maxHeadBytes: 1024)
        parser.append(ByteBuffer(string: "GET / HTTP/9\r\n\r\n"))
        #expect(throws: HTTPWireFailure.self) { try parser.next() }
        parser.append(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        #expect(throws: HTTPWireFailure.self) { try parser.next() }
    }

    @Test func anOversizedHeadIsRefusedWithoutWaitingForItsEnd() {
        let huge = "GET / HTTP/1.1\r\nx-filler: " + String(repeating: "a", count: 4096)
        #expect(throws: HTTPWireFailure.self) { try Self.parse(huge, piece: 100, maxHeadBytes: 1024) }
        let long = "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n" + String(repeating: "1", count: 5000)
        #expect(throws: HTTPWireFailure.self) { try Self.parse(long, piece: 1000) }
    }

    /// Random bytes, and valid requests with bytes flipped, end in events or a refusal: never a
    /// crash, and never more body than was sent.
    @Test func randomAndMutatedBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        let valid = Array((Self.post + Self.chunked).utf8)
        for round in 0..<2000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            var parser = HTTPRequestParser(maxHeadBytes: 1024)
            var bodyBytes = 0
            for piece in stride(from: 0, to: bytes.count, by: 7) {
                parser.append(ByteBuffer(bytes: bytes[piece..<min(piece + 7, bytes.count)]))
                do {
                    while let event = try parser.next() {
                        if case .body(let buffer) = event { bodyBytes += buffer.readableBytes }
                    }
                } catch {
                    break
                }
            }
            #expect(bodyBytes <= bytes.count)
        }
    }
}
