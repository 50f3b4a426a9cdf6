package import NIOCore
package import NIOHTTP1

/// The pipeline end of an upstream connection: passes response parts to the current delegate
/// and decides whether the connection can serve another exchange.
package final class UpstreamHTTPClientHandler: ChannelDuplexHandler {
    package typealias InboundIn = HTTPClientResponsePart
    package typealias OutboundIn = Never
    package typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var delegate: (any UpstreamResponseDelegate)?
    private var onIdle: (() -> Void)?
    private var responseKeepAlive = true
    private var requestKeepAlive = true
    private var sawHead = false
    /// Quiescing (the connection's session is draining): closed after the response in flight.
    private var closesAfterResponse = false

    package var isIdle: Bool { delegate == nil }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func start(head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping () -> Void) {
        guard let context else { return delegate.upstreamFailed(UpstreamError(.closedBeforeResponse, "upstream connection closed")) }
        self.delegate = delegate
        self.onIdle = onIdle
        sawHead = false
        requestKeepAlive = head.isKeepAlive
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    package func abandon() {
        delegate = nil
        onIdle = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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

    package func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        fail(UpstreamError(sawHead ? .closedMidResponse : .closedBeforeResponse,
                           sawHead ? "upstream closed the connection in the middle of the response" : "upstream closed the connection before answering"))
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let kind: UpstreamError.Kind = error is HTTPParserError ? .malformedResponse : (sawHead ? .closedMidResponse : .closedBeforeResponse)
        fail(UpstreamError(kind, "upstream connection failed: \(error)"))
        context.close(promise: nil)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
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
