import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OpenSSLTLS

/// Opens a WebSocket to upstream and reports either the open session or upstream's refusal
/// (status, headers and body, which the client must get unchanged: Codex reads them).
enum UpstreamWebSocketDialer {
    /// Created and consumed on the dialing event loop; the leg handler never leaves it.
    enum Outcome: @unchecked Sendable {
        case upgraded(channel: any Channel, leg: WebSocketLegHandler, head: HTTPResponseHead)
        case refused(head: HTTPResponseHead, body: [UInt8])
    }

    static let maxMessageSize = 64 << 20

    /// Dials on `eventLoop` (the client's, so the relay never crosses threads).
    static func dial(_ plan: UpstreamRequestPlan, timeouts: UpstreamClient.Timeouts, on eventLoop: any EventLoop) -> EventLoopFuture<Outcome> {
        if let tunnel = plan.tunnelTag {
            // Not carried yet: the relay expects both legs on one event loop (issue #6 follow-up).
            return eventLoop.makeFailedFuture(UpstreamError(.connect, "WebSocket sessions through the reverse tunnel of \(tunnel) are not supported yet"))
        }
        let outcome = eventLoop.makePromise(of: Outcome.self)
        let target = plan.target
        let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: maxMessageSize, automaticErrorHandling: false) { channel, head in
            channel.eventLoop.makeCompletedFuture {
                let leg = WebSocketLegHandler(side: .upstream)
                leg.deflate = PerMessageDeflate.accepted(response: head.headers.first(name: "sec-websocket-extensions")).map(PerMessageDeflate.init)
                try channel.pipeline.syncOperations.addHandler(leg)
                // Nothing flows until the relay is attached and turns reading back on.
                channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                outcome.succeed(.upgraded(channel: channel, leg: leg, head: head))
            }
        }
        let connect = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeouts.connect)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let context = target.tls { try sync.addHandler(OpenSSLHandler(context: context, serverName: target.serverName)) }
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
            .connect(host: target.host, port: target.port)
        connect.whenComplete { result in
            switch result {
            case .failure(let error):
                outcome.fail(UpstreamError(.connect, "cannot connect to \(target): \(error)"))
            case .success(let channel):
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
