import HTTPWire
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import Gateway

/// The client connection's codec on an embedded channel: the parts it hands on, the bytes it
/// writes for each kind of answer, its one report of a malformed request, and what becomes of
/// the bytes after an upgrade request.
@Suite(.timeLimit(.minutes(1))) struct ClientHTTPCodecTests {
    /// Stands where the gateway's HTTP handler is and records what arrives.
    final class Recorder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        var parts: [String] = []
        var errors: [any Error] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): parts.append("head \(head.method.rawValue) \(head.uri)")
            case .body(let body): parts.append("body \(String(buffer: body))")
            case .end: parts.append("end")
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    }

    /// Stands where the next protocol's handler is after an upgrade.
    final class ByteRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += String(buffer: unwrapInboundIn(data)) }
    }

    struct Connection {
        let channel = EmbeddedChannel()
        let codec = ClientHTTPCodec(maxHeadBytes: 4096)
        let recorder = Recorder()

        init() throws {
            try channel.pipeline.syncOperations.addHandlers([codec, recorder])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func written() throws -> String {
            var text = ""
            while let part = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: part) }
            return text
        }
    }

    @Test func requestsArriveAsParts() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: "POST /v1/responses HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}GET /status HTTP/1.1\r\n\r\n"))
        #expect(connection.recorder.parts == ["head POST /v1/responses", "body {}", "end", "head GET /status", "end"])
    }

    @Test func anAnswerWithoutLengthGoesInChunks() throws {
        let connection = try Connection()
        connection.codec.writeHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-type": "text/event-stream"]))
        connection.codec.writeBody(ByteBuffer(string: "hello"))
        connection.codec.writeBody(ByteBuffer())
        connection.codec.writeBody(ByteBuffer(string: " world!"))
        connection.codec.writeEnd(promise: nil)
        #expect(try connection.written() == "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n")
        // The next answer starts afresh: an empty chunked answer is only its last chunk.
        connection.codec.writeHead(HTTPResponseHead(version: .http1_1, status: .ok))
        connection.codec.writeEnd(promise: nil)
        #expect(try connection.written() == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")
        #expect(connection.channel.isActive)
    }

    @Test func anAnswerWithItsLengthOrWithoutBodyGoesAsItIs() throws {
        let connection = try Connection()
        connection.codec.writeHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "5"]))
        connection.codec.writeBody(ByteBuffer(string: "hello"))
        let written = connection.channel.eventLoop.makePromise(of: Void.self)
        connection.codec.writeEnd(promise: written)
        #expect(try connection.written() == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        try written.futureResult.wait()
        connection.codec.writeHead(HTTPResponseHead(version: .http1_1, status: .noContent))
        connection.codec.writeEnd(promise: nil)
        connection.codec.sendInterim(HTTPResponseHead(version: .http1_1, status: .continue))
        #expect(try connection.written() == "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n")
    }

    @Test func anHTTP10AnswerWithoutLengthEndsWithTheConnection() throws {
        let connection = try Connection()
        connection.codec.writeHead(HTTPResponseHead(version: .http1_0, status: .ok))
        connection.codec.writeBody(ByteBuffer(string: "hello"))
        connection.codec.writeEnd(promise: nil)
        #expect(try connection.written() == "HTTP/1.0 200 OK\r\n\r\nhello")
        connection.channel.embeddedEventLoop.run()
        #expect(!connection.channel.isActive)
    }

    @Test func aMalformedRequestIsReportedOnce() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nbad name: x\r\n\r\n"))
        try connection.channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        #expect(connection.recorder.errors.count == 1)
        #expect(connection.recorder.errors.first is HTTPWireFailure)
        #expect(connection.recorder.parts.isEmpty)
    }

    /// The answers written below the codec (the connection guard's refusals, a connection over
    /// the cap) frame themselves: their own length, and a close.
    @Test func rawAnswersCarryTheirLengthAndClose() {
        let response = GatewayResponse(status: .ok, headers: ["X-A": "1", "Content-Length": "99", "Connection": "keep-alive"], body: Array("hi".utf8))
        #expect(String(buffer: response.rawHTTP(closing: true, allocator: ByteBufferAllocator()))
            == "HTTP/1.1 200 OK\r\nX-A: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi")
        #expect(String(buffer: response.rawHTTP(closing: false, allocator: ByteBufferAllocator()))
            == "HTTP/1.1 200 OK\r\nX-A: 1\r\ncontent-length: 2\r\n\r\nhi")
    }

    static let upgrade = "GET /v1/responses HTTP/1.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n"

    @Test func whatFollowsAnUpgradeGoesToTheNextProtocolWhenTheCodecLeaves() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: Self.upgrade + "\u{81}\u{02}hi"))
        #expect(connection.recorder.parts == ["head GET /v1/responses", "end"])
        // As in an upgrade: the next protocol's handler takes the HTTP handler's place, then the codec leaves.
        let next = ByteRecorder()
        try connection.channel.pipeline.syncOperations.removeHandler(connection.recorder).wait()
        try connection.channel.pipeline.syncOperations.addHandler(next)
        try connection.channel.pipeline.syncOperations.removeHandler(connection.codec).wait()
        #expect(next.bytes == "\u{81}\u{02}hi")
    }

    @Test func anUpgradeRequestAnsweredOverHTTPLetsTheNextRequestThrough() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: Self.upgrade + "GET /status HTTP/1.1\r\n\r\n"))
        #expect(connection.recorder.parts == ["head GET /v1/responses", "end"])
        connection.codec.writeHead(HTTPResponseHead(version: .http1_1, status: .unauthorized, headers: ["content-length": "0"]))
        connection.codec.writeEnd(promise: nil)
        connection.channel.embeddedEventLoop.run()
        #expect(connection.recorder.parts == ["head GET /v1/responses", "end", "head GET /status", "end"])
    }
}
