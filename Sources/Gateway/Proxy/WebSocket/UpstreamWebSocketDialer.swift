import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OpenSSLTLS
import UpstreamHTTP
import Zlib

/// Opens a WebSocket to upstream and reports either the open session or upstream's refusal
/// (status, headers and body, which the client must get unchanged: Codex reads them).
enum UpstreamWebSocketDialer {
    enum Outcome: Sendable {
        /// The leg lives on the upstream channel's loop: the client's for a socket, the
        /// session's for a tunnel stream.
        case upgraded(channel: any Channel, leg: NIOLoopBound<WebSocketLegHandler>, head: HTTPResponseHead)
        case refused(head: HTTPResponseHead, body: [UInt8])
    }

    /// What upstream may send in one message (the client's side has its own limit, `limits.max_websocket_message`).
    static let maxMessageSize = 64 << 20

    /// Dials on `eventLoop` (the client's, so a socket relay never crosses threads), or opens a
    /// stream on the reverse tunnel when the plan goes through one. `opened` learns the channel as
    /// soon as it exists (on `eventLoop`, before or after the outcome), so the caller can close it
    /// while it waits for the 101.
    static func dial(_ plan: UpstreamRequestPlan, timeouts: UpstreamClient.Timeouts, tunnels: ReverseTunnels,
                     on eventLoop: any EventLoop, opened: @escaping @Sendable (any Channel) -> Void) -> EventLoopFuture<Outcome> {
        let outcome = eventLoop.makePromise(of: Outcome.self)
        let target = plan.target
        let channel: EventLoopFuture<any Channel>
        if let tunnel = plan.tunnelTag {
            channel = tunnels.openStream(tunnel, on: eventLoop) { stream in
                stream.eventLoop.makeCompletedFuture { try addUpgradeHandlers(to: stream, tls: nil, serverName: nil, outcome: outcome) }
            }
        } else {
            channel = ClientBootstrap(group: eventLoop)
                .connectTimeout(timeouts.connect)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try addUpgradeHandlers(to: channel, tls: target.tls, serverName: target.serverName, outcome: outcome)
                    }
                }
                .connect(host: target.host, port: target.port)
                .flatMapErrorThrowing { error in throw UpstreamError(.connect, "cannot connect to \(target): \(error)") }
        }
        // No answer to the upgrade in time: the client hears so, and the attempt is dropped.
        let seconds = Double(timeouts.upgrade.nanoseconds) / 1e9
        let deadline = eventLoop.scheduleTask(in: timeouts.upgrade) {
            outcome.fail(UpstreamError(.timeout, "upstream did not answer the WebSocket upgrade within \(seconds) s"))
            channel.whenSuccess { $0.close(promise: nil) }
        }
        outcome.futureResult.whenComplete { _ in deadline.cancel() }
        channel.whenComplete { result in
            switch result {
            case .failure(let error):
                outcome.fail(error)
            case .success(let channel):
                if eventLoop.inEventLoop { opened(channel) } else { eventLoop.execute { opened(channel) } }
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: plan.uri, headers: plan.headers)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                channel.closeFuture.whenComplete { _ in
                    outcome.fail(UpstreamError(.closedBeforeResponse, "upstream closed the connection before answering the WebSocket upgrade"))
                }
            }
        }
        return outcome.futureResult
    }

    private static func addUpgradeHandlers(to channel: any Channel, tls: OpenSSLContext?, serverName: String?,
                                           outcome: EventLoopPromise<Outcome>) throws {
        let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: maxMessageSize, automaticErrorHandling: false) { channel, head in
            channel.eventLoop.makeCompletedFuture {
                let leg = WebSocketLegHandler(side: .upstream, maxMessageSize: maxMessageSize)
                leg.deflate = PerMessageDeflate.accepted(response: head.headers.first(name: "sec-websocket-extensions")).map(PerMessageDeflate.init)
                try leg.install(in: channel)
                // Nothing flows until the relay is attached and turns reading back on.
                channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                outcome.succeed(.upgraded(channel: channel, leg: NIOLoopBound(leg, eventLoop: channel.eventLoop), head: head))
            }
        }
        let sync = channel.pipeline.syncOperations
        if let tls { try sync.addHandler(OpenSSLHandler(context: tls, serverName: serverName)) }
        // On success the refusal collector must leave, or WebSocket bytes would reach it.
        let upgraded: @Sendable (ChannelHandlerContext) -> Void = { context in
            if let collector = try? context.pipeline.syncOperations.handler(type: UpgradeRefusalCollector.self) {
                context.pipeline.syncOperations.removeHandler(collector, promise: nil)
            }
        }
        try sync.addHTTPClientHandlers(
            leftOverBytesStrategy: .forwardBytes, withClientUpgrade: (upgraders: [upgrader], completionHandler: upgraded))
        try sync.addHandler(UpgradeRefusalCollector(outcome: outcome))
    }
}

/// Receives the response when upstream does not switch protocols.
private final class UpgradeRefusalCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let outcome: EventLoopPromise<UpstreamWebSocketDialer.Outcome>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(outcome: EventLoopPromise<UpstreamWebSocketDialer.Outcome>) {
        self.outcome = outcome
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(let buffer):
            if body.count < 64 * 1024 { body += buffer.readableBytesView.prefix(64 * 1024 - body.count) }
        case .end:
            if let head { outcome.succeed(.refused(head: head, body: body)) }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        outcome.fail(UpstreamError(.malformedResponse, "WebSocket upgrade to upstream failed: \(error)"))
        context.close(promise: nil)
    }
}
