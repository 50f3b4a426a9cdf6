import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Answers the simulator's plain HTTP routes: SSE responses, the usage API, the token endpoint,
/// and refused WebSocket upgrades.
final class SimulatorHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let simulator: UpstreamSimulator
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// True while an SSE answer is being written; a close before the end counts as abandoned.
    private var streaming = false

    init(simulator: UpstreamSimulator) {
        self.simulator = simulator
    }

    private var requestsOnThisConnection = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            handle(context: context, head: head, body: Data(body.readableBytesView))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if streaming {
            streaming = false
            simulator.mutate { $0.abandonedStreams += 1 }
        }
        context.fireChannelInactive()
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead, body: Data) {
        requestsOnThisConnection += 1
        if requestsOnThisConnection > 1, simulator.mutate({ state in
            defer { state.closesNextReusedConnection = false }
            return state.closesNextReusedConnection
        }) {
            return context.close(promise: nil)
        }
        let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
        let accountID = simulator.state.withLock { $0.accountID(bearer: head.headers.first(name: "authorization")) }
        let isUpgrade = head.headers.first(name: "upgrade")?.lowercased() == "websocket"
        let json = SimulatorJSON.object(body)
        simulator.mutate { state in
            state.log.append(SimulatedRequest(
                transport: .http, method: isUpgrade ? "UPGRADE" : head.method.rawValue, path: path, accountID: accountID,
                headers: head.headers.map { ($0.name.lowercased(), $0.value) }, body: body,
                isWarmUp: (json?["generate"] as? Bool) == false))
        }
        switch (head.method, path) {
        case (.POST, "/oauth/token"):
            refreshToken(context: context, body: body, contentType: head.headers.first(name: "content-type") ?? "")
        case (.POST, "/api/accounts/deviceauth/usercode"):
            let answer = simulator.deviceUserCode(json ?? [:])
            respond(context: context, status: .init(statusCode: answer.status), json: answer.json)
        case (.POST, "/api/accounts/deviceauth/token"):
            let answer = simulator.deviceToken(json ?? [:], issuer: "http://\(head.headers.first(name: "host") ?? "127.0.0.1")")
            respond(context: context, status: .init(statusCode: answer.status), json: answer.json)
        case (.GET, "/oauth/authorize"):
            let query = URLComponents(string: head.uri)?.queryItems?.reduce(into: [String: String]()) { $0[$1.name] = $1.value } ?? [:]
            let answer = simulator.authorize(query)
            var headers = HTTPHeaders()
            if let location = answer.location { headers.add(name: "location", value: location) }
            respond(context: context, status: .init(statusCode: answer.status), json: answer.json, extraHeaders: headers)
        case (_, "/backend-api/wham/usage"), (_, "/wham/usage"), (_, "/api/codex/usage"):
            guard let accountID, let account = simulator.account(accountID) else { return unauthorized(context: context) }
            respond(context: context, status: .ok, json: usagePayload(account))
        case (.GET, "/backend-api/codex/models"):
            guard let accountID, let account = simulator.account(accountID) else { return unauthorized(context: context) }
            let catalog = SimulatedModelCatalog(planType: account.rateLimits.planType)
            simulator.mutate { $0.catalogRequests += 1 }
            var headers = HTTPHeaders([("etag", catalog.etag)])
            if head.headers.first(name: "if-none-match") == catalog.etag {
                headers.add(name: "content-length", value: "0")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers))), promise: nil)
                return context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
            respond(context: context, status: .ok, json: catalog.json, extraHeaders: headers)
        case (.POST, "/backend-api/codex/images/generations"), (.POST, "/backend-api/codex/images/edits"):
            guard let accountID, let account = simulator.account(accountID) else { return unauthorized(context: context) }
            if rejectModelRequest(context: context, account: account) != nil { return }
            switch SimulatedImages.answer(json ?? [:], edit: path.hasSuffix("/edits"), now: UpstreamSimulator.unixNow) {
            case .failure(let problem):
                respond(context: context, status: .badRequest, json: ["error": ["type": "invalid_request_error", "message": problem.message]])
            case .success(let answer):
                let headers = account.rateLimits.headers(now: UpstreamSimulator.unixNow)
                let later = NIOLoopBound((self, context, answer), eventLoop: context.eventLoop)
                let eventLoop = context.eventLoop
                // Held answers (holdAnswers) come when released, like a generation that takes its time.
                if simulator.holdIfAsked({ eventLoop.execute { later.value.0.respond(context: later.value.1, status: .ok, json: later.value.2, extraHeaders: headers) } }) {
                    return
                }
                guard account.answerDelayMilliseconds > 0 else { return respond(context: context, status: .ok, json: answer, extraHeaders: headers) }
                // Image generation takes a while; the answer comes all at once.
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(account.answerDelayMilliseconds))) {
                    let (handler, context, answer) = later.value
                    guard context.channel.isActive else { return }
                    handler.respond(context: context, status: .ok, json: answer, extraHeaders: headers)
                }
            }
        case (_, "/backend-api/codex/responses"):
            guard let accountID, let account = simulator.account(accountID) else { return unauthorized(context: context) }
            if isUpgrade {
                // The upgrader refused: the account is rate-limited or failing.
                return rejectModelRequest(context: context, account: account) ?? respond(context: context, status: .badRequest, json: ["error": ["message": "upgrade refused"]])
            }
            guard head.method == .POST else { return respond(context: context, status: .methodNotAllowed, json: ["error": ["message": "method not allowed"]]) }
            if rejectModelRequest(context: context, account: account) != nil { return }
            if let problem = simulator.codexRequestProblem(json ?? [:]) {
                return respond(context: context, status: .badRequest, json: ["error": ["type": "invalid_request_error", "message": problem]])
            }
            if let refusal = simulator.continuationProblem(json ?? [:], turnStateHeader: head.headers.first(name: "x-codex-turn-state"),
                                                           accountID: accountID, checksPreviousResponse: true) {
                return respond(context: context, status: .badRequest, json: ["error": refusal])
            }
            let turnState = simulator.turnState(for: json ?? [:], turnStateHeader: head.headers.first(name: "x-codex-turn-state"), accountID: accountID)
            guard account.answerDelayMilliseconds > 0 else {
                return streamAnswer(context: context, account: account, request: json ?? [:], turnState: turnState,
                                    sessionID: head.headers.first(name: "session-id"))
            }
            let sessionID = head.headers.first(name: "session-id")
            let later = NIOLoopBound((self, context, json ?? [:]), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(account.answerDelayMilliseconds))) {
                let (handler, context, request) = later.value
                guard context.channel.isActive else { return }
                handler.streamAnswer(context: context, account: account, request: request, turnState: turnState, sessionID: sessionID)
            }
        default:
            respond(context: context, status: .notFound, json: ["error": ["type": "invalid_request_error", "message": "no route for \(path)"]])
        }
    }

    /// Answers 429 or the configured failure; nil when the account may be served.
    private func rejectModelRequest(context: ChannelHandlerContext, account: SimulatedAccount) -> Void? {
        let now = UpstreamSimulator.unixNow
        switch account.behavior {
        case .failing(let status):
            return respond(context: context, status: .init(statusCode: status), json: ["error": ["type": "server_error", "message": "simulated failure"]])
        case .unauthorized:
            return respond(context: context, status: .unauthorized, json: ["error": [
                "type": "invalid_request_error", "code": "token_invalidated",
                "message": "Your authentication token has been invalidated. Please try signing in again."]])
        case .rateLimited:
            var limits = account.rateLimits
            if limits.exhaustedResetAt == nil { limits.weekly.usedPercent = 100 }
            return respond(context: context, status: .tooManyRequests, json: ["error": SimulatedTurn.usageLimitError(limits, now: now)],
                           extraHeaders: limits.headers(now: now))
        case .normal, .dropMidStream, .stallMidStream, .failMidAnswer:
            guard account.rateLimits.limitReached else { return nil }
            return respond(context: context, status: .tooManyRequests, json: ["error": SimulatedTurn.usageLimitError(account.rateLimits, now: now)],
                           extraHeaders: account.rateLimits.headers(now: now))
        }
    }

    private func streamAnswer(context: ChannelHandlerContext, account: SimulatedAccount, request: [String: Any], turnState: String,
                              sessionID: String?) {
        let now = UpstreamSimulator.unixNow
        if let problem = SimulatedAPIAnswer.problem(in: request) {
            return respond(context: context, status: .badRequest, json: ["error": ["type": "invalid_request_error", "message": problem]])
        }
        let responseID = simulator.mutate { $0.nextResponseID() }
        simulator.recordResponse(responseID, of: account.accountID)
        // An account set up for Codex's own tool loop answers as Codex expects; others as the API does.
        let answer = account.toolCommand == nil ? SimulatedAPIAnswer(request: request, accountReply: account.reply) : SimulatedAPIAnswer()
        var answering = account
        if let reply = answer.reply { answering.reply = reply }
        var turn = SimulatedTurn(responseID: responseID, model: request["model"] as? String ?? "gpt-5.5", account: answering,
                                 isWarmUp: (request["generate"] as? Bool) == false, createdAt: now,
                                 callsTool: simulator.toolCall(for: request, account: account, sessionID: sessionID))
        if turn.callsTool == nil { turn.functionCall = answer.toolCall }
        var headers = account.rateLimits.headers(now: now)
        headers.add(name: "content-type", value: "text/event-stream")
        headers.add(name: "cache-control", value: "no-cache")
        headers.add(name: "x-request-id", value: responseID)
        headers.add(name: "x-codex-turn-state", value: turnState)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        streaming = true
        let chunks = simulator.renderedEvents(for: turn, cut: account.behavior == .dropMidStream || account.behavior == .stallMidStream,
                                              framing: .serverSentEvents)
        let interval = TimeAmount.milliseconds(Int64(account.eventIntervalMilliseconds))
        writeEvents(chunks[...], context: context, interval: interval, account: account, turn: turn)
    }

    /// Writes one event, then the rest after `interval` (immediately when zero).
    private func writeEvents(_ chunks: ArraySlice<ByteBuffer>, context: ChannelHandlerContext, interval: TimeAmount,
                             account: SimulatedAccount, turn: SimulatedTurn) {
        var remaining = chunks
        while let chunk = remaining.popFirst() {
            guard context.channel.isActive else { return }
            if chunk.readableBytes == 0 {
                context.flush()
                if account.behavior == .dropMidStream { context.close(promise: nil) }
                return
            }
            // Unpaced answers go out in one flush, as a server with the whole answer at hand would.
            if interval > .zero {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            } else {
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
            if !remaining.isEmpty {
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let rest = remaining
                let eventLoop = context.eventLoop
                if simulator.holdIfAsked({ eventLoop.execute { loopBound.value.0.writeEvents(rest, context: loopBound.value.1, interval: interval, account: account, turn: turn) } }) {
                    context.flush()
                    return
                }
            }
            if interval > .zero, !remaining.isEmpty {
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let rest = remaining
                context.eventLoop.scheduleTask(in: interval) {
                    let (handler, context) = loopBound.value
                    handler.writeEvents(rest, context: context, interval: interval, account: account, turn: turn)
                }
                return
            }
        }
        streaming = false
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        simulator.mutate { state in
            state.completedResponses += 1
            if !turn.isWarmUp { state.accounts[account.accountID]?.rateLimits.addUse(account.percentPerTurn) }
        }
    }

    private func refreshToken(context: ChannelHandlerContext, body: Data, contentType: String) {
        var fields: [String: String] = [:]
        if contentType.contains("json") {
            for (key, value) in SimulatorJSON.object(body) ?? [:] { fields[key] = value as? String }
        } else {
            for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
        }
        if fields["grant_type"] == "authorization_code" {
            let answer = simulator.exchangeCode(fields)
            return respond(context: context, status: .init(statusCode: answer.status), json: answer.json)
        }
        guard fields["grant_type"] == "refresh_token", let presented = fields["refresh_token"] else {
            return respond(context: context, status: .badRequest, json: ["error": ["code": "invalid_request", "message": "grant_type must be refresh_token"]])
        }
        let outcome = simulator.mutate { state -> (status: HTTPResponseStatus, json: [String: Any]) in
            guard var account = state.accounts.values.first(where: { $0.refreshToken == presented || $0.usedRefreshTokens.contains(presented) }) else {
                return (.unauthorized, ["error": ["code": "refresh_token_invalidated", "message": "unknown refresh token"]])
            }
            guard account.refreshToken == presented else {
                return (.unauthorized, ["error": ["code": "refresh_token_reused", "message": "refresh token already used"]])
            }
            let access = SimulatedAccount.accessTokenJWT(accountID: account.accountID, planType: account.rateLimits.planType,
                                                         expiresAt: Date().addingTimeInterval(3600))
            account.usedRefreshTokens.insert(presented)
            account.refreshToken = "refresh-\(account.accountID)-\(UUID().uuidString.prefix(8))"
            account.accessTokens.insert(access)
            state.accounts[account.accountID] = account
            return (.ok, ["id_token": access, "access_token": access, "refresh_token": account.refreshToken,
                          "token_type": "Bearer", "expires_in": 3600, "scope": "openid profile email"])
        }
        respond(context: context, status: outcome.status, json: outcome.json)
    }

    private func usagePayload(_ account: SimulatedAccount) -> [String: Any] {
        let now = UpstreamSimulator.unixNow
        func window(_ window: SimulatedRateLimits.Window) -> [String: Any] {
            ["used_percent": Int(window.usedPercent.rounded()), "limit_window_seconds": window.windowMinutes * 60,
             "reset_after_seconds": max(0, window.resetAt - now), "reset_at": window.resetAt]
        }
        let limits = account.rateLimits
        var rateLimit: [String: Any] = ["allowed": !limits.limitReached, "limit_reached": limits.limitReached]
        if let fiveHour = limits.fiveHour {
            rateLimit["primary_window"] = window(fiveHour)
            rateLimit["secondary_window"] = window(limits.weekly)
        } else {
            rateLimit["primary_window"] = window(limits.weekly)
            rateLimit["secondary_window"] = NSNull()
        }
        return ["user_id": "user-\(account.accountID)", "account_id": account.accountID, "email": account.email,
                "plan_type": limits.planType, "rate_limit": rateLimit, "code_review_rate_limit": NSNull(),
                "additional_rate_limits": limits.extraLimits.isEmpty ? NSNull() : limits.extraLimits.map { extra -> [String: Any] in
                    ["limit_name": extra.name, "metered_feature": extra.id.replacingOccurrences(of: "-", with: "_"),
                     "rate_limit": ["allowed": true, "limit_reached": false, "primary_window": window(extra.fiveHour), "secondary_window": NSNull()]]
                },
                "credits": ["has_credits": false, "unlimited": false, "balance": "0", "approx_local_messages": [0, 0], "approx_cloud_messages": [0, 0]],
                "rate_limit_reached_type": NSNull(), "promo": NSNull()]
    }

    private func unauthorized(context: ChannelHandlerContext) {
        respond(context: context, status: .unauthorized,
                json: ["error": ["type": "invalid_request_error", "code": "invalid_api_key", "message": "Incorrect API key provided"]])
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, json: [String: Any], extraHeaders: HTTPHeaders = [:]) {
        let data = SimulatorJSON.data(json)
        var headers = extraHeaders
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(data.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: data)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
