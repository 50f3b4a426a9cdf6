import Configuration
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import PoolCore

/// The HTTP side of one client connection: routes each request (§7.1) and authenticates it as
/// soon as its head arrives — a request that is refused (no valid token, unknown route, a body
/// over the limit) is answered before its body is read, and the body is dropped, never kept —
/// then answers it itself (errors, status) or hands it to a proxy exchange.
final class GatewayHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, ClientResponder {
    typealias InboundIn = HTTPServerRequestPart

    /// What the current request turns into once its body has arrived.
    private enum Intake {
        /// Its body is collected for the proxy.
        case proxy(AuthenticatedUser)
        /// Answered at the end of the request by the gateway itself.
        case local(GatewayRoute, AuthenticatedUser?)
        /// Already answered: the body is dropped, and the connection closes at the request's end.
        case refused
    }

    let runtime: GatewayRuntime
    private let upgrade: WebSocketUpgradeSlot
    private(set) var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var intake = Intake.refused
    /// The proxied request's body so far (`ByteBuffer()` shares one empty storage: resetting it costs nothing).
    private var body = ByteBuffer()
    /// Bytes of a refused request's body dropped so far; past the body limit the connection closes.
    private var dropped = 0
    private var keepAlive = true
    /// The request's `.end` has not arrived yet (a refusal answered early waits for it to close).
    private var requestInProgress = false
    private var exchange: HTTPProxyExchange?
    var watch: StatusWatch?
    var adminEvents: AdminEventStream?
    private(set) var logger: Logger
    /// An answer is under way (from the request's end to the answer's end).
    private var answering = false
    /// Request parts that arrived while an answer was under way (pipelining), in order.
    private var heldBack: [HTTPServerRequestPart] = []
    /// The current request's route and user, for the metrics of its answer.
    private var routeLabel = "not_found"
    private var userName: String?

    init(runtime: GatewayRuntime, upgrade: WebSocketUpgradeSlot) {
        self.runtime = runtime
        self.upgrade = upgrade
        logger = runtime.logger
        // Listener limits need a restart to change: read once per connection.
        limits = runtime.configuration.limits
    }

    private let limits: ListenerLimits

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connectionGuard = try? context.pipeline.syncOperations.handler(type: ConnectionGuard.self)
        codec = try? context.pipeline.syncOperations.handler(type: ClientHTTPCodec.self)
    }

    /// The connection's HTTP codec: answers are written through it directly.
    private var codec: ClientHTTPCodec?

    /// The connection's guard (absent on connections that are not guarded), told when each
    /// request starts and its answer ends.
    private var connectionGuard: ConnectionGuard?

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // A pipelined request waits for the answer before it (HTTP/1.1 answers in order); the
        // connection stops reading until it is taken up. Codex never pipelines: this costs
        // nothing per request, unlike stopping and resuming reads around every answer.
        if answering || !heldBack.isEmpty {
            if heldBack.isEmpty { context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
            heldBack.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            connectionGuard?.requestStarted()
            self.head = head
            keepAlive = head.isKeepAlive
            requestInProgress = true
            body = ByteBuffer()
            dropped = 0
            // Set in place: once the previous request's exchange let go of its copy, the logger is this
            // connection's alone again, and no copy of it is made per request.
            logger[metadataKey: "request"] = .string(RequestID.make())
            logger[metadataKey: "user"] = nil
            intake = admit(head, context: context)
        case .body(var chunk):
            switch intake {
            case .proxy(let user):
                guard body.readableBytes + chunk.readableBytes <= limits.maxBody else {
                    body = ByteBuffer()
                    recordRejected(user, head: head)
                    refuse(bodyTooLarge, reason: .bodyTooLarge)
                    return
                }
                // The first piece is kept as it came, a slice of what was read: most bodies arrive whole, and the
                // upstream request copies them once anyway.
                if body.readableBytes == 0 { body = chunk } else { body.writeBuffer(&chunk) }
            case .local, .refused:
                // Nothing the gateway answers itself reads a body; a refused one is dropped as it comes.
                dropped += chunk.readableBytes
                if dropped > limits.maxBody { context.close(promise: nil) }
            }
        case .end:
            requestInProgress = false
            guard let head else { return }
            self.head = nil
            switch intake {
            case .proxy(let user):
                answering = true
                startExchange(head, user: user, context: context)
            case .local(let route, let user):
                answering = true
                handleLocal(route, head: head, user: user, context: context)
            case .refused:
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }

    /// Takes up the requests held back while the previous one was answered, until one of them
    /// is being answered in turn; reading resumes when none is left.
    private func resumeHeldBack() {
        guard let context else { return }
        while !answering, !heldBack.isEmpty {
            handle(heldBack.removeFirst(), context: context)
        }
        if heldBack.isEmpty {
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            context.read()
        }
    }

    /// Shutting down: an idle connection closes now, a busy one after its answer.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        if !answering, !requestInProgress, heldBack.isEmpty {
            context.close(promise: nil)
        } else {
            keepAlive = false
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange?.clientDisconnected()
        exchange = nil
        watch?.stop()
        watch = nil
        adminEvents?.stop()
        adminEvents = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.clientWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused upgrade is reported as an error, then delivered as a plain request, which
        // is answered with the refusal the upgrade slot holds.
        if error is NIOWebSocketUpgradeError { return }
        // Malformed HTTP: answer 400 when nothing was sent yet, then close.
        if error is HTTPWireFailure, exchange == nil, watch == nil, adminEvents == nil {
            keepAlive = false
            send(.error(.badRequest, type: "invalid_request_error", message: "malformed HTTP request: \(error)"))
        } else {
            logger.debug("client connection error: \(error)")
            context.close(promise: nil)
        }
    }

    // MARK: Routing

    /// Decides on a request from its head alone: refusals are answered now, before any body.
    private func admit(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Intake {
        if GatewayRoute.isWebSocketUpgrade(head), let refusal = upgrade.takeRefusal() {
            return refuse(refusal, reason: nil)
        }
        let route = GatewayRoute(head)
        routeLabel = MetricsRoute.label(route)
        userName = nil
        switch route {
        case .notFound:
            return refuse(.notFound, reason: .unknownRoute)
        case .invalidPath(let problem):
            logger.info("refused a request for an unsafe path: \(problem)")
            return refuse(.error(.badRequest, type: "invalid_request_error", code: "invalid_path", message: "invalid path: \(problem)"),
                          reason: .invalidPath)
        case .metrics, .reverse:
            return .local(route, nil)
        case .status, .chatGPT, .admin, .models:
            guard let user = authenticate(head) else { return .refused }
            return .local(route, user)
        case .dashboard:
            return .local(route, nil)
        case .proxy:
            guard let user = authenticate(head) else { return .refused }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBody {
                recordRejected(user, head: head)
                return refuse(bodyTooLarge, reason: .bodyTooLarge)
            }
            // The client waits for this before it sends the body: only a request that will be read gets it.
            if head.expectsContinue {
                codec?.sendInterim(HTTPResponseHead(version: head.version, status: .continue))
            }
            return .proxy(user)
        }
    }

    /// A proxied request of a known user that codexpool refused itself, for the history.
    private func recordRejected(_ user: AuthenticatedUser, head: HTTPRequestHead?) {
        let path = GatewayRoute.pathAndQuery(head?.uri ?? "").path
        runtime.recordFinished(FinishedRequest(
            transport: .http, outcome: .rejected, credential: nil, user: user, requestID: logger[metadataKey: "request"]?.description ?? "",
            model: nil, route: GatewayRoute.ProxiedRoute(rawValue: GatewayRoute.canonicalProxyURI(path))?.metricsLabel ?? path,
            status: 413, timeToFirstByte: nil, duration: .zero, error: "request body larger than \(limits.maxBody) bytes"))
    }

    /// Answers now and drops the rest of the request; the connection closes after it, at once
    /// when the client waits for a `100 Continue` that will not come.
    @discardableResult
    private func refuse(_ response: GatewayResponse, reason: RefusalReason?) -> Intake {
        if let reason { runtime.metrics.recordRefusal(reason) }
        let expectsContinue = head?.expectsContinue ?? false
        keepAlive = false
        intake = .refused
        send(response)
        if expectsContinue || !requestInProgress { context?.close(promise: nil) }
        return .refused
    }

    private var bodyTooLarge: GatewayResponse {
        .error(.payloadTooLarge, type: "invalid_request_error", code: "request_too_large", message: "request body larger than \(limits.maxBody) bytes")
    }

    private func startExchange(_ head: HTTPRequestHead, user: AuthenticatedUser, context: ChannelHandlerContext) {
        let prepared = ProxiedRequest.prepare(head: head, body: body, user: user, runtime: runtime, logger: logger)
        body = ByteBuffer()
        switch prepared {
        case .answered(let response):
            send(response)
        case .ready(let request):
            let exchange = HTTPProxyExchange(runtime: runtime, user: user, request: request, eventLoop: context.eventLoop, logger: logger, responder: self)
            self.exchange = exchange
            exchange.start()
        }
    }

    private func authenticate(_ head: HTTPRequestHead) -> AuthenticatedUser? {
        switch runtime.authenticate(head.headers, remoteAddress: context?.channel.remoteAddress, logger: logger) {
        case .success(let user):
            userName = user.name
            if !user.name.isEmpty { logger[metadataKey: "user"] = .string(user.name) }
            return user
        case .failure(let failure):
            refuse(failure.response, reason: nil)
            return nil
        }
    }

    // MARK: ClientResponder

    var isClientWritable: Bool { context?.channel.isWritable ?? false }

    func sendHead(_ head: HTTPResponseHead) {
        runtime.metrics.recordHTTPResponse(route: routeLabel, status: head.status.code, credential: exchange?.credentialTag, user: userName)
        var head = head
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        codec?.writeHead(head)
    }

    func sendHead(version: HTTPVersion, status: HTTPResponseStatus, writingLines writeLines: (inout ByteBuffer) -> Bool) {
        runtime.metrics.recordHTTPResponse(route: routeLabel, status: status.code, credential: exchange?.credentialTag, user: userName)
        codec?.writeHead(version: version, status: status) { buffer in
            let givesLength = writeLines(&buffer)
            if !keepAlive { buffer.writeStaticString("connection: close\r\n") }
            return HTTPResponseHeadWriter.HeaderFraming(givesLength: givesLength)
        }
    }

    func sendBody(_ buffer: ByteBuffer) {
        codec?.writeBody(buffer)
        codec?.flush()
    }

    func writeBody(_ buffer: ByteBuffer) {
        codec?.writeBody(buffer)
    }

    func flush() {
        codec?.flush()
    }

    func sendEnd() {
        guard let context else { return }
        exchange = nil
        watch = nil
        adminEvents = nil
        answering = false
        let keepAlive = self.keepAlive
        let closesNow = !keepAlive && !requestInProgress
        if closesNow {
            let channel = context.channel
            let written = context.eventLoop.makePromise(of: Void.self)
            codec?.writeEnd(promise: written)
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            // No future to allocate when nothing waits for the write (every keep-alive answer).
            codec?.writeEnd(promise: nil)
        }
        if keepAlive {
            connectionGuard?.responseCompleted()
            // Not from inside this call: the answer may have been sent from within the handling
            // of the request before it.
            if !heldBack.isEmpty {
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.execute { handler.value.resumeHeldBack() }
            }
        }
    }

    func send(_ response: GatewayResponse) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        sendHead(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))
        if !response.body.isEmpty, let context {
            codec?.writeBody(context.channel.allocator.buffer(bytes: response.body))
        }
        sendEnd()
    }

    func abortConnection() {
        exchange = nil
        context?.close(promise: nil)
    }
}

extension HTTPRequestHead {
    /// `Expect: 100-continue`: the client holds its body back until told to send it.
    var expectsContinue: Bool {
        headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
    }
}
