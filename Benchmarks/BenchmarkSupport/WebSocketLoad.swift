#if canImport(Glibc)
import Glibc
#endif
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization
import Zlib

/// `concurrency` Responses WebSocket sessions, each sending a turn (`response.create`) as soon as
/// the previous one's `response.completed` arrived. Time to first byte is from sending the
/// turn to its first message (Codex's `codex.rate_limits`). With `offersDeflate`, each session
/// offers permessage-deflate as the Codex CLI does, and inflates what comes compressed.
public func runWebSocketLoad(port: Int, path: String, headers: [(String, String)], turn: String, duration: Double, concurrency: Int,
                             stagger: TimeAmount = .zero, pause: TimeAmount = .zero, offersDeflate: Bool = false) async throws -> LoadResult {
    let tally = Tally()
    let deadline = NIODeadline.now() + .milliseconds(Int64(duration * 1000))
    var channels: [any Channel] = []
    var headers = headers
    if offersDeflate { headers.append(("sec-websocket-extensions", PerMessageDeflate.clientOffer)) }
    for _ in 0..<concurrency {
        let session = WebSocketLoadSession(turn: turn, counter: TurnCounter(deadline: deadline, tally: tally, stagger: stagger, pause: pause))
        let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24) { channel, answer in
            let agreed = PerMessageDeflate.accepted(response: answer.headers.first(name: "sec-websocket-extensions"))
            return channel.eventLoop.makeCompletedFuture {
                session.deflate = agreed.map(PerMessageDeflate.init)
                try channel.pipeline.syncOperations.addHandler(session)
            }
        }
        let channel = try await ClientBootstrap(group: loadGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgraded: @Sendable (ChannelHandlerContext) -> Void = { context in
                        if let counter = try? context.pipeline.syncOperations.handler(type: UpgradeRefusalCounter.self) {
                            context.pipeline.syncOperations.removeHandler(counter, promise: nil)
                        }
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(withClientUpgrade: (upgraders: [upgrader], completionHandler: upgraded))
                    try channel.pipeline.syncOperations.addHandler(UpgradeRefusalCounter(tally: tally))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var fields = HTTPHeaders(headers)
        fields.add(name: "host", value: "127.0.0.1:\(port)")
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: fields)), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        channels.append(channel)
    }
    return try await tally.result(waitingFor: channels)
}

/// One upgraded session of the load: turns back to back until the deadline.
final class WebSocketLoadSession: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let turn: ByteBuffer
    private let counter: TurnCounter
    /// Set when the server agreed to permessage-deflate.
    var deflate: PerMessageDeflate?
    /// A compressed message's fragments so far.
    private var compressedFragments: ByteBuffer?
    private static let completed = Array(#"response.completed""#.utf8)

    /// A byte search cheap enough that the load generator is not what limits the run (the
    /// generic `firstRange(of:)` was).
    private static func contains(_ bytes: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let base = bytes.baseAddress, bytes.count >= needle.count else { return false }
        var offset = 0
        while offset <= bytes.count - needle.count,
              let found = memchr(base + offset, Int32(needle[0]), bytes.count - needle.count + 1 - offset) {
            if memcmp(found, needle, needle.count) == 0 { return true }
            offset = base.distance(to: UnsafeRawPointer(found)) + 1
        }
        return false
    }

    init(turn: String, counter: TurnCounter) {
        self.turn = ByteBuffer(string: turn)
        self.counter = counter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A turn that never ends must not hold the run: it counts as failed.
        context.eventLoop.assumeIsolated().scheduleTask(deadline: counter.deadline + .seconds(10)) {
            self.counter.connectionEnded(failed: true)
            context.close(promise: nil)
        }
        counter.startFirstTurn(on: context.eventLoop) { self.send(context: context) }
    }

    private func send(context: ChannelHandlerContext) {
        counter.turnStarted()
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: turn)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .continuation:
            counter.received(frame.data.readableBytes)
            var message = frame.data
            if frame.rsv1 || compressedFragments != nil {
                // Compressed: inflated whole, as every message must be for the context to hold.
                var fragments = compressedFragments ?? ByteBuffer()
                var data = frame.data
                fragments.writeBuffer(&data)
                guard frame.fin else {
                    compressedFragments = fragments
                    return
                }
                compressedFragments = nil
                guard let deflate, let inflated = try? deflate.decompress(fragments) else {
                    errorCaught(context: context, error: WebSocketLoadFailure())
                    return
                }
                message = inflated
            }
            guard message.withUnsafeReadableBytes({ Self.contains($0, Self.completed) }) else { return }
            if !counter.turnEnded(on: context.eventLoop, { self.send(context: context) }) { context.close(promise: nil) }
        case .connectionClose:
            counter.connectionEnded(failed: false)
            context.close(promise: nil)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        counter.connectionEnded(failed: true)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter.connectionEnded(failed: false)
        context.fireChannelInactive()
    }
}

/// A compressed message that could not be inflated.
struct WebSocketLoadFailure: Error {}

/// Counts an upgrade the server refused (any answer but 101) and ends that connection.
final class UpgradeRefusalCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let tally: Tally

    init(tally: Tally) {
        self.tally = tally
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            tally.state.withLock { $0.failures += 1 }
            context.close(promise: nil)
        }
    }
}
