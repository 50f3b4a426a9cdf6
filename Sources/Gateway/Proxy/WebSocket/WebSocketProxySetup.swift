import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import PoolCore
import UpstreamHTTP
import Zlib

/// Prepares a Responses WebSocket (§8.1–8.3): authenticate, select, and open the upstream
/// WebSocket *before* answering the client, so the client gets either upstream's 101 headers
/// or upstream's exact refusal. A 429 on the upgrade fails over to the next credential.
final class WebSocketProxySetup: @unchecked Sendable {
    // Used only on the client channel's event loop.
    private let runtime: GatewayRuntime
    private let slot: WebSocketUpgradeSlot
    private let eventLoop: any EventLoop
    private let head: HTTPRequestHead
    private let user: AuthenticatedUser
    private let sessionID: String?
    private let requestID = RequestID.make()
    private var logger: Logger
    private var attempts = 0
    private var refreshedAfter401: Set<String> = []
    private var lastGrantToken: Secret?
    private let result: EventLoopPromise<HTTPHeaders?>

    static let openAIBeta = "responses_websockets=2026-02-06"

    /// Decides the upgrade; the future's nil means "answer over HTTP with the slot's refusal".
    static func shouldUpgrade(runtime: GatewayRuntime, slot: WebSocketUpgradeSlot, channel: any Channel, head: HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?> {
        // Other upgrade requests are plain HTTP requests to the proxy (which drops `Upgrade`).
        guard GatewayRoute.isWebSocketUpgrade(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
        switch runtime.authenticate(head.headers, remoteAddress: channel.remoteAddress) {
        case .failure(let failure):
            slot.refuse(failure.response)
            return channel.eventLoop.makeSucceededFuture(nil)
        case .success(let user):
            let setup = WebSocketProxySetup(runtime: runtime, slot: slot, eventLoop: channel.eventLoop, head: head, user: user)
            setup.start()
            return setup.result.futureResult
        }
    }

    private init(runtime: GatewayRuntime, slot: WebSocketUpgradeSlot, eventLoop: any EventLoop, head: HTTPRequestHead, user: AuthenticatedUser) {
        self.runtime = runtime
        self.slot = slot
        self.eventLoop = eventLoop
        self.head = head
        self.user = user
        sessionID = SessionKey.from(head.headers.map { ($0.name, $0.value) })
        result = eventLoop.makePromise()
        logger = runtime.logger
        logger[metadataKey: "request"] = "\(requestID)"
        if !user.name.isEmpty { logger[metadataKey: "user"] = "\(user.name)" }
    }

    private func start() {
        runtime.refreshUnavailableCredentials(provider: user.provider, on: eventLoop).whenComplete { [self] _ in
            switch runtime.select(for: user, sessionID: sessionID) {
            case .failure(let failure):
                logger.info("no credential for \(user.provider): \(failure.explanation)")
                refuse(.selectionFailed(failure))
            case .success(let selection):
                dial(selection.tag, isNewSession: selection.isNewSession)
            }
        }
    }

    private func dial(_ tag: String, isNewSession: Bool, rejectedToken: Secret? = nil) {
        attempts += 1
        runtime.pollIfStale(tag)
        runtime.plan(for: tag, method: .GET, uri: head.uri, clientHeaders: head.headers, bodyLength: nil, webSocket: true,
                     rejectedToken: rejectedToken, on: eventLoop)
            .flatMap { [self] built -> EventLoopFuture<UpstreamWebSocketDialer.Outcome> in
                var built = built
                if !built.headers.contains(name: "openai-beta") { built.headers.add(name: "openai-beta", value: Self.openAIBeta) }
                built.headers.add(name: "sec-websocket-extensions", value: PerMessageDeflate.clientOffer)
                lastGrantToken = built.grantToken
                return UpstreamWebSocketDialer.dial(built, timeouts: runtime.upstream.timeouts, tunnels: runtime.reverseTunnels, on: eventLoop)
            }
            .whenComplete { [self] outcome in
                switch outcome {
                case .success(.upgraded(let channel, let leg, let upstreamHead)):
                    upgraded(tag: tag, isNewSession: isNewSession, channel: channel, leg: leg, head: upstreamHead)
                case .success(.refused(let upstreamHead, let body)):
                    refused(tag: tag, isNewSession: isNewSession, head: upstreamHead, body: body, token: lastGrantToken)
                case .failure(let error as CredentialAccessError):
                    logger.error("credential \(tag) cannot be used: \(error)")
                    refuse(.error(.unauthorized, type: "authentication_error", message: "authentication failed: credential \(tag): \(error)"))
                case .failure(let error):
                    logger.error("dial upstream websocket for \(tag): \(error)")
                    refuse(.error(.badGateway, type: "api_error", message: "upstream websocket connection failed: \(error)"))
                }
            }
    }

    private func upgraded(tag: String, isNewSession: Bool, channel: any Channel, leg: NIOLoopBound<WebSocketLegHandler>, head upstreamHead: HTTPResponseHead) {
        runtime.observe(RateLimitSnapshot(headers: upstreamHead.headers.map { ($0.name, $0.value) }), tag: tag)
        // Only Codex's own headers reach the client (§8.3), with the rate limits aggregated.
        var headers = HTTPHeaders()
        for (name, value) in upstreamHead.headers {
            let lowered = name.lowercased()
            if lowered.hasPrefix("x-codex-") || lowered.hasPrefix("x-reasoning") || lowered == "openai-model" || lowered.contains("-secondary-") {
                headers.add(name: name, value: value)
            }
        }
        headers = RateLimitHeaderRewriter.rewrite(headers, with: runtime.aggregate(for: user), now: runtime.now)
        let deflate = PerMessageDeflate.accept(offers: head.headers[canonicalForm: "sec-websocket-extensions"].joined(separator: ", "))
        if let deflate { headers.add(name: "sec-websocket-extensions", value: deflate.response) }
        slot.prepare(PreparedWebSocketSession(upstream: channel, upstreamLeg: leg, tag: tag, user: user, isNewSession: isNewSession,
                                              sessionID: sessionID, requestID: requestID, clientDeflate: deflate?.agreement))
        result.succeed(headers)
    }

    private func refused(tag: String, isNewSession: Bool, head upstreamHead: HTTPResponseHead, body: [UInt8], token: Secret?) {
        let status = upstreamHead.status.code
        let headerFields = upstreamHead.headers.map { ($0.name, $0.value) }
        if status == 429 {
            let rejection = RateLimitRejection(headers: headerFields, body: Data(body), now: runtime.now)
            switch runtime.afterRateLimit(for: user, sessionID: sessionID, failedTag: tag, rejection: rejection, attemptsSoFar: attempts) {
            case .retry(let next):
                logger.info("retrying websocket with credential \(next.tag) after 429 from \(tag)")
                return dial(next.tag, isNewSession: true)
            case .answer(let response):
                return refuse(response)
            }
        }
        if status == 401, !runtime.isExternal(tag), !refreshedAfter401.contains(tag) {
            refreshedAfter401.insert(tag)
            return dial(tag, isNewSession: isNewSession, rejectedToken: token)
        }
        if status == 400, runtime.isExternal(tag) { return refuse(runtime.peerRejected(tag, for: user)) }
        logger.error("dial upstream websocket: status \(status) body: \(String(decoding: body.prefix(4096), as: UTF8.self))")
        runtime.observe(RateLimitSnapshot(headers: headerFields), tag: tag)
        // Upstream's own answer, unchanged apart from hop-by-hop and rate-limit headers.
        var headers = RateLimitHeaderRewriter.clientResponseHeaders(upstreamHead.headers, with: runtime.aggregate(for: user), now: runtime.now)
        headers.remove(name: "content-length")
        refuse(GatewayResponse(status: upstreamHead.status, headers: headers, body: body))
    }

    private func refuse(_ response: GatewayResponse) {
        slot.refuse(response)
        result.succeed(nil)
    }

    /// Attaches the client side after the 101 went out.
    static func installRelay(runtime: GatewayRuntime, slot: WebSocketUpgradeSlot, channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            guard let session = slot.takeSession() else { throw ChannelError.ioOnClosedChannel }
            let leg = WebSocketLegHandler(side: .client)
            leg.deflate = session.clientDeflate.map(PerMessageDeflate.init)
            try channel.pipeline.syncOperations.addHandler(leg)
            runtime.metrics.recordHTTPResponse(route: "responses", status: 101, credential: session.tag, user: session.user.name)
            WebSocketRelay(runtime: runtime, session: session, clientChannel: channel, clientLeg: leg).start()
        }
    }
}
