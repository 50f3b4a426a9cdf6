import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OpenSSLTLS
import Testing
import UpstreamHTTP
import Zlib

/// A minimal Responses WebSocket client: upgrade, send JSON text messages, read messages.
/// Used by one test task at a time.
final class TestWebSocketClient: @unchecked Sendable {
    enum Outcome: @unchecked Sendable {
        case upgraded(HTTPResponseHead)
        case refused(HTTPResponseHead, String)
    }

    private var channel: (any Channel)?
    private var iterator: AsyncStream<WebSocketFrame>.AsyncIterator
    private let continuation: AsyncStream<WebSocketFrame>.Continuation
    private(set) var outcome: Outcome?
    /// Set when the server agreed to permessage-deflate; its long messages then arrive compressed.
    private(set) var deflate: PerMessageDeflate?
    /// Text messages that came compressed, and all that came.
    private(set) var compressedMessages = 0
    private(set) var textMessages = 0

    init() {
        let (stream, continuation) = AsyncStream<WebSocketFrame>.makeStream()
        iterator = stream.makeAsyncIterator()
        self.continuation = continuation
    }

    /// With `tls`, speaks TLS (server name `localhost`) to a TLS listener.
    static func connect(port: Int, path: String = "/v1/responses", headers: [(String, String)], tls: OpenSSLContext? = nil) async throws -> TestWebSocketClient {
        let client = TestWebSocketClient()
        let outcome = GatewayTestBed.group.next().makePromise(of: Outcome.self)
        let continuation = client.continuation
        let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24, automaticErrorHandling: false) { channel, head in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: 1 << 26))
                try channel.pipeline.syncOperations.addHandler(FrameCollector(continuation: continuation))
                outcome.succeed(.upgraded(head))
            }
        }
        // Whatever ends the attempt early, the promise is completed: a promise dropped unfulfilled
        // stops the whole test process, not just this test.
        do {
            try await client.open(port: port, path: path, headers: headers, tls: tls, upgrader: upgrader, outcome: outcome)
        } catch {
            outcome.fail(error)
            client.close()
            throw error
        }
        if case .upgraded(let head) = client.outcome, let agreement = PerMessageDeflate.accepted(response: head.headers.first(name: "sec-websocket-extensions")) {
            client.deflate = PerMessageDeflate(agreement)
        }
        return client
    }

    private func open(port: Int, path: String, headers: [(String, String)], tls: OpenSSLContext?, upgrader: NIOWebSocketClientUpgrader,
                      outcome: EventLoopPromise<Outcome>) async throws {
        let channel = try await ClientBootstrap(group: GatewayTestBed.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: tls, serverName: "localhost")) }
                    let upgraded: @Sendable (ChannelHandlerContext) -> Void = { context in
                        if let collector = try? context.pipeline.syncOperations.handler(type: RefusalCollector.self) {
                            context.pipeline.syncOperations.removeHandler(collector, promise: nil)
                        }
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes, withClientUpgrade: (upgraders: [upgrader], completionHandler: upgraded))
                    try channel.pipeline.syncOperations.addHandler(RefusalCollector(outcome: outcome))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var fields = HTTPHeaders(headers)
        fields.add(name: "host", value: "127.0.0.1:\(port)")
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: fields)), promise: nil)
        self.channel = channel
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        self.outcome = try await outcome.futureResult.get()
    }

    func send(_ text: String) async throws {
        guard let channel else { return }
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        try await channel.writeAndFlush(frame)
    }

    /// The next frame from the server; nil when the connection ended.
    func nextFrame() async -> WebSocketFrame? {
        var current = iterator
        defer { iterator = current }
        return await current.next()
    }

    /// The next text message as JSON; nil when the connection ended.
    func nextMessage() async -> [String: Any]? {
        while let frame = await nextFrame() {
            guard frame.opcode == .text else {
                if frame.opcode == .connectionClose { return nil }
                continue
            }
            var data = frame.unmaskedData
            textMessages += 1
            if frame.rsv1 {
                compressedMessages += 1
                guard let deflate, let inflated = try? deflate.decompress(data) else { return nil }
                data = inflated
            }
            return (try? JSONSerialization.jsonObject(with: Data(data.readableBytesView))) as? [String: Any]
        }
        return nil
    }

    /// Messages until (and including) the one whose type is `type`.
    func messages(through type: String) async -> [[String: Any]] {
        var messages: [[String: Any]] = []
        while let message = await nextMessage() {
            messages.append(message)
            if message["type"] as? String == type { break }
        }
        return messages
    }

    /// What Codex does on a new connection: a warm-up (`generate: false`), then a turn chained to
    /// it by `previous_response_id`. The turn's events, through its `response.completed`.
    func warmUpAndTurn() async throws -> [[String: Any]] {
        try await send(WebSocketProxyTests.prewarm)
        let warm = await messages(through: "response.completed")
        let prewarmID = try #require((warm.last?["response"] as? [String: Any])?["id"] as? String)
        try await send(WebSocketProxyTests.turn(after: prewarmID))
        return await messages(through: "response.completed")
    }

    func close() {
        channel?.close(promise: nil)
    }

    private final class FrameCollector: ChannelInboundHandler {
        typealias InboundIn = WebSocketFrame
        let continuation: AsyncStream<WebSocketFrame>.Continuation

        init(continuation: AsyncStream<WebSocketFrame>.Continuation) {
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            continuation.yield(unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            continuation.finish()
        }
    }

    private final class RefusalCollector: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        let outcome: EventLoopPromise<Outcome>
        var head: HTTPResponseHead?
        var body = ""

        init(outcome: EventLoopPromise<Outcome>) {
            self.outcome = outcome
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body(let buffer): body += String(buffer: buffer)
            case .end: if let head { outcome.succeed(.refused(head, body)) }
            }
        }

        /// Closed before an answer (or the upgrade, which removes this handler): the attempt failed.
        func channelInactive(context: ChannelHandlerContext) {
            outcome.fail(ClosedBeforeAnswer())
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            outcome.fail(error)
            context.close(promise: nil)
        }
    }

    struct ClosedBeforeAnswer: Error, CustomStringConvertible {
        var description: String { "the connection closed before the server answered the upgrade request" }
    }
}
