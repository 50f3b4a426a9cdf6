import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import PoolCore
import UpstreamHTTP
import Zlib

/// Prepares a Responses WebSocket (§8.1–8.3): authenticate, then let the credential dispatch
/// pick and open the upstream WebSocket *before* answering the client, so the client gets either
/// upstream's 101 headers or the same refusal an HTTP request would get (a 429 on the upgrade
/// fails over, a 401 refreshes once, …).
/// Confined to the client channel's event loop.
final class WebSocketProxySetup {
    private let runtime: GatewayRuntime
    private let slot: WebSocketUpgradeSlot
    private let eventLoop: any EventLoop
    private let head: HTTPRequestHead
    private let user: AuthenticatedUser
    private let requestID: String
    private let logger: Logger
    private let dispatch: CredentialDispatch
    private let result: EventLoopPromise<HTTPHeaders?>
    /// The attempt whose dial has not reported yet, and its upstream channel once that exists
    /// (so an interruption or a departing client can close it while it waits for the 101).
    private var pendingDial: (attempt: Int, channel: (any Channel)?)?
    private var done = false

    static let openAIBeta = "responses_websockets=2026-02-06"

    /// Decides the upgrade; the future's nil means "answer over HTTP with the slot's refusal".
    static func shouldUpgrade(runtime: GatewayRuntime, slot: WebSocketUpgradeSlot, channel: any Channel, head: HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?> {
        // Other upgrade requests are plain HTTP requests to the proxy (which drops `Upgrade`).
        guard GatewayRoute.isWebSocketUpgrade(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
        let requestID = RequestID.make()
        var logger = runtime.logger
        logger[metadataKey: "request"] = "\(requestID)"
        switch runtime.authenticate(head.headers, remoteAddress: channel.remoteAddress, logger: logger) {
        case .failure(let failure):
            slot.refuse(failure.response)
            return channel.eventLoop.makeSucceededFuture(nil)
        case .success(let user):
            if !user.name.isEmpty { logger[metadataKey: "user"] = "\(user.name)" }
            // The connection is one session for the user's limits, open while the socket is.
            switch runtime.admit(user, sessionKey: SessionKey.from(head.headers) ?? requestID, countsRequest: false,
                                 logger: logger) {
            case .failure(let refusal):
                runtime.recordFinished(FinishedRequest(
                    transport: .websocket, outcome: .userLimited, credential: nil, user: user, requestID: requestID, model: nil, route: "responses",
                    status: 429, timeToFirstByte: nil, duration: .zero, error: refusal.message(now: runtime.now)))
                slot.refuse(runtime.userLimitResponse(refusal))
                return channel.eventLoop.makeSucceededFuture(nil)
            case .success(let hold):
                if let hold { channel.closeFuture.whenComplete { _ in hold.release() } }
            }
            let setup = WebSocketProxySetup(runtime: runtime, slot: slot, eventLoop: channel.eventLoop, head: head, user: user,
                                            requestID: requestID, logger: logger)
            let bound = NIOLoopBound(setup, eventLoop: channel.eventLoop)
            // A client that leaves while upstream is being dialled ends the attempt.
            channel.closeFuture.whenComplete { _ in bound.value.clientLeft() }
            setup.start()
            return setup.result.futureResult
        }
    }

    private init(runtime: GatewayRuntime, slot: WebSocketUpgradeSlot, eventLoop: any EventLoop, head: HTTPRequestHead, user: AuthenticatedUser,
                 requestID: String, logger: Logger) {
        self.runtime = runtime
        self.slot = slot
        self.eventLoop = eventLoop
        self.head = head
        self.user = user
        result = eventLoop.makePromise()
        self.requestID = requestID
        self.logger = logger
        dispatch = CredentialDispatch(
            runtime: runtime, user: user,
            request: .init(method: .GET, uri: GatewayRoute.canonicalProxyURI(head.uri), headers: head.headers, body: nil, transport: .websocket),
            eventLoop: eventLoop, logger: logger)
    }

    private func start() {
        dispatch.start { [self] step in
            switch step {
            case .send(let plan, let attempt):
                dial(plan, attempt: attempt)
            case .answer(let response, let outcome):
                dropDialing()
                runtime.recordFinished(FinishedRequest(
                    transport: .websocket, outcome: outcome, credential: dispatch.tag, user: user, requestID: requestID, model: nil,
                    route: "responses", status: Int(response.status.code), timeToFirstByte: nil, duration: .zero,
                    failovers: max(0, dispatch.attempts - 1), error: HTTPProxyExchange.summary(of: response)))
                refuse(response)
            }
        }
    }

    private func clientLeft() {
        guard !done else { return }
        done = true
        dispatch.end()
        dropDialing()
        runtime.recordFinished(FinishedRequest(transport: .websocket, outcome: .clientDisconnected, credential: dispatch.tag, user: user,
                                               requestID: requestID, model: nil, route: "responses", status: nil, timeToFirstByte: nil,
                                               duration: .zero, error: "client left during the upgrade"))
        result.succeed(nil)
    }

    private func dropDialing() {
        pendingDial?.channel?.close(promise: nil)
        pendingDial = nil
    }

    private func dial(_ plan: UpstreamRequestPlan, attempt: CredentialDispatch.Attempt) {
        var plan = plan
        if !plan.headers.contains(name: "openai-beta") { plan.headers.add(name: "openai-beta", value: Self.openAIBeta) }
        plan.headers.add(name: "sec-websocket-extensions", value: PerMessageDeflate.clientOffer)
        let setup = NIOLoopBound(self, eventLoop: eventLoop)
        pendingDial = (attempt.number, nil)
        UpstreamWebSocketDialer.dial(plan, timeouts: runtime.upstream.timeouts, tunnels: runtime.reverseTunnels, on: eventLoop) { channel in
            let setup = setup.value
            if setup.pendingDial?.attempt == attempt.number, !setup.done { setup.pendingDial?.channel = channel } else { channel.close(promise: nil) }
        }
        .whenComplete { outcome in
            let setup = setup.value
            if setup.pendingDial?.attempt == attempt.number { setup.pendingDial = nil }
            guard !setup.done, setup.dispatch.isCurrent(attempt) else {
                if case .success(.upgraded(let channel, _, _)) = outcome { channel.close(promise: nil) }
                return
            }
            switch outcome {
            case .success(.upgraded(let channel, let leg, let upstreamHead)):
                setup.dispatch.end()
                setup.upgraded(attempt: attempt, channel: channel, leg: leg, head: upstreamHead)
            case .success(.refused(let upstreamHead, let body)):
                if setup.dispatch.earlyAnswer(status: upstreamHead.status.code).needsDecision {
                    setup.dispatch.upstreamAnswered(upstreamHead, body: body)
                } else {
                    setup.dispatch.end()
                    setup.passRefusalThrough(attempt.tag, head: upstreamHead, body: body)
                }
            case .failure(let error):
                setup.dispatch.upstreamFailed(error)
            }
        }
    }

    private func upgraded(attempt: CredentialDispatch.Attempt, channel: any Channel, leg: NIOLoopBound<WebSocketLegHandler>, head upstreamHead: HTTPResponseHead) {
        let tag = attempt.tag
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
        headers.replaceOrAdd(name: servingCredentialHeader, value: tag)
        let connectorCredential = runtime.isExternal(tag) ? upstreamHead.headers.first(name: servingCredentialHeader) : nil
        let deflate = PerMessageDeflate.accept(offers: head.headers[canonicalForm: "sec-websocket-extensions"].joined(separator: ", "))
        if let deflate { headers.add(name: "sec-websocket-extensions", value: deflate.response) }
        done = true
        slot.prepare(PreparedWebSocketSession(upstream: channel, upstreamLeg: leg, tag: tag, user: user, isNewSession: attempt.isNewSession,
                                              sessionID: dispatch.sessionID, requestID: requestID, clientDeflate: deflate?.agreement,
                                              connectorCredential: connectorCredential))
        result.succeed(headers)
    }

    /// Upstream refused the upgrade with an answer that needs no decision: the client gets it
    /// unchanged apart from hop-by-hop and rate-limit headers, as an HTTP request would.
    private func passRefusalThrough(_ tag: String, head upstreamHead: HTTPResponseHead, body: [UInt8]) {
        logger.error("dial upstream websocket: status \(upstreamHead.status.code) body: \(String(decoding: body.prefix(4096), as: UTF8.self))")
        runtime.observe(RateLimitSnapshot(headers: upstreamHead.headers.map { ($0.name, $0.value) }), tag: tag)
        var headers = RateLimitHeaderRewriter.clientResponseHeaders(upstreamHead.headers, with: runtime.aggregate(for: user), now: runtime.now)
        headers.remove(name: "content-length")
        refuse(GatewayResponse(status: upstreamHead.status, headers: headers, body: body))
    }

    private func refuse(_ response: GatewayResponse) {
        guard !done else { return }
        done = true
        slot.refuse(response)
        result.succeed(nil)
    }

    /// Attaches the client side after the 101 went out.
    static func installRelay(runtime: GatewayRuntime, slot: WebSocketUpgradeSlot, channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            guard let session = slot.takeSession() else { throw ChannelError.ioOnClosedChannel }
            let leg = WebSocketLegHandler(side: .client, maxMessageSize: runtime.configuration.limits.maxWebSocketMessage)
            leg.deflate = session.clientDeflate.map(PerMessageDeflate.init)
            try leg.install(in: channel)
            runtime.metrics.recordHTTPResponse(route: "responses", status: 101, credential: session.tag, user: session.user.name)
            WebSocketRelay(runtime: runtime, session: session, clientChannel: channel, clientLeg: leg).start()
        }
    }
}
