package import NIOCore
package import NIOHTTP1
import HTTPWire

/// The HTTP/1.1 client end of an upstream connection, bytes on one side and the current
/// exchange's delegate on the other: it writes each request as one buffer, reads the answer
/// with `HTTPResponseParser`, times out a silent upstream, and decides whether the connection
/// can serve another exchange.
package final class UpstreamHTTPClientHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let readTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var parser = HTTPResponseParser()
    private var delegate: (any UpstreamResponseDelegate)?
    private var onIdle: (() -> Void)?
    private var requestKeepAlive = true
    private var sawHead = false
    /// Quiescing (the connection's session is draining): closed after the response in flight.
    private var closesAfterResponse = false
    /// When upstream last sent something (or the request went out), on the loop's clock; the
    /// read timeout counts from it.
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var readTimer: Scheduled<Void>?

    package init(readTimeout: TimeAmount) {
        self.readTimeout = readTimeout
    }

    package var isIdle: Bool { delegate == nil }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        readTimer?.cancel()
        readTimer = nil
        self.context = nil
    }

    package func start(head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping () -> Void) {
        guard let context else { return delegate.upstreamFailed(UpstreamError(.closedBeforeResponse, "upstream connection closed")) }
        // Sized once: a buffer grown by the writer would be allocated twice.
        var bytes = context.channel.allocator.buffer(capacity: UpstreamRequestWriter.capacity(for: head, body: body))
        do {
            try UpstreamRequestWriter.write(head, body: body, into: &bytes)
        } catch {
            // Nothing went out: the connection stays usable, but this request cannot be sent.
            return delegate.upstreamFailed(UpstreamError(.unsendableRequest, "cannot send the request upstream: \(error)"))
        }
        self.delegate = delegate
        self.onIdle = onIdle
        sawHead = false
        requestKeepAlive = head.isKeepAlive
        parser.expectResponse(toHEAD: head.method == .HEAD)
        lastActivity = context.eventLoop.now
        armReadTimer(context, after: readTimeout)
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    package func abandon() {
        delegate = nil
        onIdle = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        do {
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    sawHead = true
                    delegate?.upstreamReceivedHead(head)
                case .body(let buffer):
                    delegate?.upstreamReceivedBody(buffer)
                case .end(let keepAlive):
                    finishResponse(context: context, keepAlive: keepAlive)
                }
            }
        } catch {
            fail(UpstreamError(.malformedResponse, "upstream sent a malformed response: \(error)"))
            context.close(promise: nil)
        }
    }

    private func finishResponse(context: ChannelHandlerContext, keepAlive: Bool) {
        let finished = delegate
        let idle = onIdle
        delegate = nil
        onIdle = nil
        sawHead = false
        finished?.upstreamFinished()
        if keepAlive, requestKeepAlive, !closesAfterResponse {
            idle?()
        } else {
            context.close(promise: nil)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        lastActivity = context.eventLoop.now
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        readTimer = nil
        do {
            if case .end = try parser.inputClosed() {
                finishResponse(context: context, keepAlive: false)
            } else {
                // No answer was under way (the parser had failed already): an exchange still
                // waiting never got one.
                fail(UpstreamError(.closedBeforeResponse, "upstream closed the connection before answering"))
            }
        } catch {
            fail(UpstreamError(sawHead ? .closedMidResponse : .closedBeforeResponse,
                               sawHead ? "upstream closed the connection in the middle of the response" : "upstream closed the connection before answering"))
        }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(UpstreamError(sawHead ? .closedMidResponse : .closedBeforeResponse, "upstream connection failed: \(error)"))
        context.close(promise: nil)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if isIdle { context.close(promise: nil) } else { closesAfterResponse = true }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// One timer per connection, re-armed for what is left of the timeout when it fires early
    /// (reads move `lastActivity` without touching the timer, which costs nothing per read).
    private func armReadTimer(_ context: ChannelHandlerContext, after delay: TimeAmount) {
        guard readTimer == nil else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        readTimer = context.eventLoop.scheduleTask(in: delay) { handler.value.readTimerFired() }
    }

    private func readTimerFired() {
        readTimer = nil
        guard let context, delegate != nil || parser.isExpectingResponse else { return }
        let silence = context.eventLoop.now - lastActivity
        if silence >= readTimeout {
            fail(UpstreamError(.timeout, "upstream sent nothing for too long"))
            context.close(promise: nil)
        } else {
            armReadTimer(context, after: readTimeout - silence)
        }
    }

    private func fail(_ error: UpstreamError) {
        let failed = delegate
        delegate = nil
        onIdle = nil
        failed?.upstreamFailed(error)
    }
}
