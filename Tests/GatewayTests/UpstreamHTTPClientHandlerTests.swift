import HTTPWire
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import UpstreamHTTP

/// The upstream connection's handler on an embedded channel: what it writes, what the exchange
/// hears for good, malformed, cut and silent answers, and when the connection is kept.
@Suite(.timeLimit(.minutes(1))) struct UpstreamHTTPClientHandlerTests {
    final class Recorder: UpstreamResponseDelegate {
        var heads: [HTTPResponseHead] = []
        var body = ""
        var finished = 0
        var failures: [UpstreamError] = []
        var readsCompleted = 0

        func upstreamReceivedHead(_ head: ReceivedResponseHead) { heads.append(head.head) }
        func upstreamReceivedBody(_ buffer: ByteBuffer) { body += String(buffer: buffer) }
        func upstreamFinished() { finished += 1 }
        func upstreamFailed(_ error: UpstreamError) { failures.append(error) }
        func upstreamReadComplete() { readsCompleted += 1 }
    }

    struct Connection {
        let channel: EmbeddedChannel
        let handler: UpstreamHTTPClientHandler
        let loop: EmbeddedEventLoop

        init(readTimeout: TimeAmount = .seconds(30)) throws {
            loop = EmbeddedEventLoop()
            handler = UpstreamHTTPClientHandler(readTimeout: readTimeout)
            channel = EmbeddedChannel(handler: handler, loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        /// Sends a POST and returns what went on the wire.
        func send(_ delegate: Recorder, idle: @escaping () -> Void = {}) throws -> String {
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/backend-api/codex/responses")
            head.headers.add(name: "host", value: "upstream")
            handler.start(head: head, body: ByteBuffer(string: "{}"), delegate: delegate, onIdle: idle)
            var sent = ""
            while let part = try channel.readOutbound(as: ByteBuffer.self) { sent += String(buffer: part) }
            return sent
        }

        func answer(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    @Test func aWholeAnswerReachesTheExchangeAndTheConnectionIsKept() throws {
        let connection = try Connection()
        let recorder = Recorder()
        var idled = 0
        let sent = try connection.send(recorder) { idled += 1 }
        #expect(sent == "POST /backend-api/codex/responses HTTP/1.1\r\nhost: upstream\r\ncontent-length: 2\r\n\r\n{}")
        try connection.answer("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        try connection.answer("0\r\n\r\n")
        #expect(recorder.heads.first?.status == .ok)
        #expect(recorder.body == "hello")
        #expect(recorder.finished == 1 && recorder.failures.isEmpty)
        #expect(idled == 1)
        #expect(connection.channel.isActive)
        #expect(connection.handler.isIdle)

        // The next exchange on the same connection.
        let second = Recorder()
        _ = try connection.send(second)
        try connection.answer("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(second.finished == 1 && second.heads.first?.status == .noContent)
        _ = try? connection.channel.finish()
    }

    @Test func aMalformedAnswerFailsTheExchangeAndClosesTheConnection() throws {
        let connection = try Connection()
        let recorder = Recorder()
        _ = try connection.send(recorder)
        try connection.answer("HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n")
        #expect(recorder.failures.map(\.kind) == [.malformedResponse])
        #expect(recorder.finished == 0)
        #expect(!connection.channel.isActive)
    }

    @Test func aConnectionClosedMidAnswerIsReportedAsSuch() throws {
        let connection = try Connection()
        let recorder = Recorder()
        _ = try connection.send(recorder)
        try connection.answer("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        connection.channel.pipeline.fireChannelInactive()
        #expect(recorder.body == "only part")
        #expect(recorder.failures.map(\.kind) == [.closedMidResponse])
        #expect(recorder.finished == 0)
    }

    @Test func aBodyUntilCloseEndsWithTheConnection() throws {
        let connection = try Connection()
        let recorder = Recorder()
        var idled = 0
        _ = try connection.send(recorder) { idled += 1 }
        try connection.answer("HTTP/1.1 200 OK\r\n\r\neverything")
        connection.channel.pipeline.fireChannelInactive()
        #expect(recorder.body == "everything")
        #expect(recorder.finished == 1 && recorder.failures.isEmpty)
        #expect(idled == 0)
    }

    @Test func silenceLongerThanTheReadTimeoutFailsTheExchange() throws {
        let connection = try Connection(readTimeout: .seconds(10))
        let recorder = Recorder()
        _ = try connection.send(recorder)
        connection.loop.advanceTime(by: .seconds(6))
        try connection.answer("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        // Reading resets the clock: ten seconds after the start is not ten seconds of silence.
        connection.loop.advanceTime(by: .seconds(6))
        #expect(recorder.failures.isEmpty)
        connection.loop.advanceTime(by: .seconds(5))
        #expect(recorder.failures.map(\.kind) == [.timeout])
        #expect(!connection.channel.isActive)
    }

    @Test func aHeaderThatWouldBreakTheRequestIsNeverSent() throws {
        let connection = try Connection()
        let recorder = Recorder()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        head.headers.add(name: "x-injected", value: "a\r\nx-evil: 1")
        connection.handler.start(head: head, body: nil, delegate: recorder, onIdle: {})
        #expect(try connection.channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(recorder.failures.map(\.kind) == [.unsendableRequest])
        #expect(connection.handler.isIdle && connection.channel.isActive)
        _ = try? connection.channel.finish()
    }
}
