import NIOCore
import NIOHTTP1

/// Receives one upstream response as it streams in; all calls happen on the connection's event loop.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamReceivedHead(_ head: HTTPResponseHead)
    func upstreamReceivedBody(_ buffer: ByteBuffer)
    func upstreamFinished()
    func upstreamFailed(_ error: UpstreamError)
    /// The end of one socket read: a good moment to flush what was forwarded.
    func upstreamReadComplete()
}

extension UpstreamResponseDelegate {
    func upstreamReadComplete() {}
}

/// One keep-alive HTTP/1.1 connection to an upstream, carrying one exchange at a time.
/// Used only on its channel's event loop, which is what makes the unchecked Sendable sound.
final class UpstreamHTTPConnection: @unchecked Sendable {
    let channel: any Channel
    let target: UpstreamTarget
    fileprivate let handler: UpstreamHTTPClientHandler
    /// Closes the connection when it sat unused in the pool too long.
    var idleExpiry: Scheduled<Void>?

    /// Wraps a channel set up by `UpstreamClient.addHTTPClientPipeline`; call on its event loop.
    init(channel: any Channel, target: UpstreamTarget) throws {
        self.channel = channel
        self.target = target
        handler = try channel.pipeline.syncOperations.handler(type: UpstreamHTTPClientHandler.self)
    }

    var isReusable: Bool { channel.isActive && handler.isIdle }

    /// Sends a request with a complete body; the response goes to `delegate`.
    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping (UpstreamHTTPConnection) -> Void) {
        handler.start(head: head, body: body, delegate: delegate) { onIdle(self) }
    }

    /// Stops reading while the client cannot keep up (backpressure), and resumes.
    func setReading(_ enabled: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: enabled).whenFailure { _ in }
        if enabled { channel.read() }
    }

    /// Gives up on the exchange in flight: the connection cannot be reused mid-response.
    func abandon() {
        handler.abandon()
        channel.close(promise: nil)
    }
}

/// The pipeline end of an upstream connection: passes response parts to the current delegate
/// and decides whether the connection can serve another exchange.
final class UpstreamHTTPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var delegate: (any UpstreamResponseDelegate)?
    private var onIdle: (() -> Void)?
    private var responseKeepAlive = true
    private var requestKeepAlive = true
    private var sawHead = false
    /// Quiescing (the connection's session is draining): closed after the response in flight.
    private var closesAfterResponse = false

    var isIdle: Bool { delegate == nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func start(head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping () -> Void) {
        guard let context else { return delegate.upstreamFailed(UpstreamError(.closedBeforeResponse, "upstream connection closed")) }
        self.delegate = delegate
        self.onIdle = onIdle
        sawHead = false
        requestKeepAlive = head.isKeepAlive
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func abandon() {
        delegate = nil
        onIdle = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 1xx interim answers (100 Continue) are not the response.
            if head.status.code >= 100, head.status.code < 200, head.status != .switchingProtocols { return }
            sawHead = true
            responseKeepAlive = head.isKeepAlive
            delegate?.upstreamReceivedHead(head)
        case .body(let buffer):
            delegate?.upstreamReceivedBody(buffer)
        case .end:
            guard sawHead else { return }
            let finished = delegate
            let idle = onIdle
            delegate = nil
            onIdle = nil
            finished?.upstreamFinished()
            if responseKeepAlive, requestKeepAlive, !closesAfterResponse {
                idle?()
            } else {
                context.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(UpstreamError(sawHead ? .closedMidResponse : .closedBeforeResponse,
                           sawHead ? "upstream closed the connection in the middle of the response" : "upstream closed the connection before answering"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let kind: UpstreamError.Kind = error is HTTPParserError ? .malformedResponse : (sawHead ? .closedMidResponse : .closedBeforeResponse)
        fail(UpstreamError(kind, "upstream connection failed: \(error)"))
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            fail(UpstreamError(.timeout, "upstream sent nothing for too long"))
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            if isIdle { context.close(promise: nil) } else { closesAfterResponse = true }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func fail(_ error: UpstreamError) {
        let failed = delegate
        delegate = nil
        onIdle = nil
        failed?.upstreamFailed(error)
    }
}
