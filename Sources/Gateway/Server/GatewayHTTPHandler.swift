import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import PoolCore

/// The HTTP side of one client connection: routes each request (§7.1), authenticates, and
/// answers it itself (errors, status) or hands it to a proxy exchange.
final class GatewayHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, ClientResponder {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Larger request bodies are refused with 413; Codex sends whole histories, so be generous.
    static let bodyLimit = 64 << 20

    private let runtime: GatewayRuntime
    private let upgrade: WebSocketUpgradeSlot
    private var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var bodyTooLarge = false
    private var keepAlive = true
    private var exchange: HTTPProxyExchange?
    private var watch: StatusWatch?
    private var logger: Logger
    /// The current request's route and user, for the metrics of its answer.
    private var routeLabel = "not_found"
    private var userName: String?

    init(runtime: GatewayRuntime, upgrade: WebSocketUpgradeSlot) {
        self.runtime = runtime
        self.upgrade = upgrade
        logger = runtime.logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            keepAlive = head.isKeepAlive
            body.clear()
            bodyTooLarge = false
            logger = runtime.logger
            logger[metadataKey: "request"] = "\(RequestID.make())"
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if body.readableBytes + chunk.readableBytes > Self.bodyLimit {
                bodyTooLarge = true
                body.clear()
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            handle(head, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange?.clientDisconnected()
        exchange = nil
        watch?.stop()
        watch = nil
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
        if error is HTTPParserError, exchange == nil, watch == nil {
            keepAlive = false
            send(.error(.badRequest, type: "invalid_request_error", message: "malformed HTTP request: \(error)"))
        } else {
            logger.debug("client connection error: \(error)")
            context.close(promise: nil)
        }
    }

    // MARK: Routing

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if bodyTooLarge {
            keepAlive = false
            return send(.error(.payloadTooLarge, type: "invalid_request_error", message: "request body larger than \(Self.bodyLimit) bytes"))
        }
        if GatewayRoute.isWebSocketUpgrade(head), let refusal = upgrade.takeRefusal() {
            return send(refusal)
        }
        let route = GatewayRoute(head)
        routeLabel = MetricsRoute.label(route, uri: head.uri)
        userName = nil
        switch route {
        case .notFound:
            send(.notFound)
        case .metrics:
            serveMetrics(head)
        case .reverse:
            guard !runtime.reverseTunnels.tokens.isEmpty else {
                return send(.error(.notFound, type: "invalid_request_error", message: "no reverse (connector) credential is configured on this instance"))
            }
            switch runtime.acceptReverse(head) {
            case .refused(let refusal):
                send(refusal)
            case .accepted(let tag):
                do {
                    try runtime.takeOverReverseConnection(context.channel, tag: tag)
                } catch {
                    logger.error("cannot start the reverse session for \(tag): \(error)")
                    context.close(promise: nil)
                }
            }
        case .status(let watchRequested, let detail):
            guard head.method == .GET else { return send(.methodNotAllowed) }
            guard let user = authenticate(head) else { return }
            for tag in runtime.withPool({ $0.members(of: user.provider) }) { runtime.pollIfStale(tag) }
            if detail {
                send(.json(.ok, text: runtime.operatorStatus(for: user).json))
            } else if watchRequested {
                let watch = StatusWatch(runtime: runtime, user: user, eventLoop: context.eventLoop, responder: self)
                self.watch = watch
                watch.start()
            } else {
                send(.json(.ok, text: runtime.aggregate(for: user).json))
            }
        case .proxy:
            guard let user = authenticate(head) else { return }
            let exchange = HTTPProxyExchange(runtime: runtime, user: user, head: head, body: body, eventLoop: context.eventLoop,
                                             logger: logger, responder: self)
            body = ByteBuffer()
            self.exchange = exchange
            exchange.start()
        }
    }

    private func serveMetrics(_ head: HTTPRequestHead) {
        let settings = runtime.configuration.metrics
        guard settings.enabled else { return send(.notFound) }
        guard head.method == .GET else { return send(.methodNotAllowed) }
        if let token = settings.token {
            guard case .success(let presented) = UserAuthenticator.bearerToken(in: head.headers),
                  token.constantTimeEquals(presented) else {
                logger.warning("metrics scrape refused from \(context?.channel.remoteAddress.map { "\($0)" } ?? "unknown"): missing or wrong bearer token")
                return send(.error(.unauthorized, type: "authentication_error", message: "metrics need Authorization: Bearer with the metrics token"))
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
        send(GatewayResponse(status: .ok, headers: headers, body: runtime.metricsExposition()))
    }

    private func authenticate(_ head: HTTPRequestHead) -> AuthenticatedUser? {
        switch runtime.authenticate(head.headers, remoteAddress: context?.channel.remoteAddress) {
        case .success(let user):
            userName = user.name
            if !user.name.isEmpty { logger[metadataKey: "user"] = "\(user.name)" }
            return user
        case .failure(let failure):
            send(failure.response)
            return nil
        }
    }

    // MARK: ClientResponder

    var isClientWritable: Bool { context?.channel.isWritable ?? false }

    func sendHead(_ head: HTTPResponseHead) {
        runtime.metrics.recordHTTPResponse(route: routeLabel, status: head.status.code, credential: exchange?.credentialTag, user: userName)
        var head = head
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        context?.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    func sendBody(_ buffer: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func writeBody(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func sendEnd() {
        guard let context else { return }
        exchange = nil
        watch = nil
        let keepAlive = self.keepAlive
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    func send(_ response: GatewayResponse) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        sendHead(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))
        if !response.body.isEmpty, let context {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        sendEnd()
    }

    func abortConnection() {
        exchange = nil
        context?.close(promise: nil)
    }
}
