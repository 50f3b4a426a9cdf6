import HTTPWire
import NIOCore
import NIOHTTP1

/// First in the pipeline after TLS: watches raw bytes for request heads that are too large or
/// too slow, and closes keep-alive connections that sit idle (`ConnectionDeadlines` decides).
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var deadlines: ConnectionDeadlines
    private let refused: (ConnectionDeadlines.Refusal) -> Void
    /// The one timer of the connection and when it fires. Arming and disarming per request only
    /// move `armed`; the timer is rescheduled only when a deadline comes sooner than it fires,
    /// and when it fires early it goes again for the rest — no schedule and cancel per request.
    private var timer: Scheduled<Void>?
    private var timerFiresAt: NIODeadline?
    private var armed: (kind: ConnectionDeadlines.Timer, at: NIODeadline)?

    /// - Parameter refused: counts and logs a refusal (metrics, never the bytes).
    init(maxHeaderBytes: Int, headerTimeout: Double, idleTimeout: Double, refused: @escaping (ConnectionDeadlines.Refusal) -> Void) {
        deadlines = ConnectionDeadlines(maxHeaderBytes: maxHeaderBytes, headerTimeout: headerTimeout, idleTimeout: idleTimeout)
        self.refused = refused
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(deadlines.connectionOpened(), context: context)
        context.fireChannelActive()
    }

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { perform(deadlines.connectionOpened(), context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let action = deadlines.received(buffer.readableBytesView)
        perform(action, context: context)
        if case .refuse = action { return }
        context.fireChannelRead(data)
    }

    // The HTTP handler calls these two directly (same connection, same event loop): no events
    // down the pipeline twice a request, and the guard stays out of the outbound path.

    /// A request head reached the HTTP handler.
    func requestStarted() {
        guard let context else { return }
        perform(deadlines.requestStarted(), context: context)
    }

    /// The answer to it is complete and the connection stays open.
    func responseCompleted() {
        guard let context else { return }
        perform(deadlines.responseCompleted(), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
    }

    private func perform(_ action: ConnectionDeadlines.Action?, context: ChannelHandlerContext) {
        guard let action else { return }
        switch action {
        case .arm(let kind, let seconds):
            let at = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
            armed = (kind, at)
            if timerFiresAt.map({ $0 > at }) ?? true { schedule(at: at, context: context) }
        case .disarm:
            armed = nil
        case .refuse(let refusal):
            cancelTimer()
            refused(refusal)
            let response: GatewayResponse = switch refusal {
            case .headerTooLarge:
                .error(.init(statusCode: 431, reasonPhrase: "Request Header Fields Too Large"), type: "invalid_request_error",
                       code: "request_header_too_large", message: "the request line and headers are larger than the limit")
            case .headerTimeout:
                .error(.requestTimeout, type: "invalid_request_error", code: "request_timeout",
                       message: "the request headers did not arrive in time")
            }
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(response.rawHTTP(closing: true, allocator: context.channel.allocator))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .close:
            cancelTimer()
            context.close(promise: nil)
        }
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerFiresAt = deadline
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.timerFiresAt = nil
            guard let armed = handler.armed else { return }
            // Armed again later since this was scheduled: wait for the rest.
            guard armed.at <= .now() else { return handler.schedule(at: armed.at, context: context) }
            handler.armed = nil
            handler.perform(handler.deadlines.timerFired(armed.kind), context: context)
        }
    }

    private func cancelTimer() {
        armed = nil
        timer?.cancel()
        timer = nil
        timerFiresAt = nil
    }
}

extension GatewayResponse {
    /// The response as HTTP/1.1 bytes, for the places that answer below the HTTP codec (the
    /// connection guard, a connection over the cap).
    func rawHTTP(closing: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var fields = headers.filter { !HTTPToken.name($0.name, is: "content-length") && !HTTPToken.name($0.name, is: "connection") }
            .map { ($0.name, $0.value) }
        fields.append(("content-length", String(body.count)))
        if closing { fields.append(("connection", "close")) }
        var buffer = allocator.buffer(capacity: 128 + body.count)
        // A length is given: the body goes as it is.
        _ = HTTPResponseHeadWriter.write(HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(fields)), into: &buffer)
        buffer.writeBytes(body)
        return buffer
    }
}
