import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import UpstreamHTTP

/// One proxied HTTP request (ocm-reference.md §7.3): the credential dispatch picks the
/// credential and decides on answers before the first byte; this exchange connects, sends, and
/// streams the answer to the client with the rate-limit headers replaced by the user's
/// aggregate, reading usage on the way.
/// Confined to the client connection's event loop: every callback it registers runs there.
final class HTTPProxyExchange: UpstreamResponseDelegate {
    private let runtime: GatewayRuntime
    private let user: AuthenticatedUser
    private let head: HTTPRequestHead
    private let body: ByteBuffer
    private let eventLoop: any EventLoop
    private let logger: Logger
    private weak var responder: (any ClientResponder)?
    private let dispatch: CredentialDispatch

    private var connection: (any UpstreamExchangeConnection)?
    /// The request went out on a reused connection that closed before answering, and was sent
    /// again on a new one; only once.
    private var retriedOnFreshConnection = false
    private var sending: (plan: UpstreamRequestPlan, attempt: CredentialDispatch.Attempt)?
    /// Start of the account's weekly window, for usage statistics; read before the rewrite.
    private var weekStart: Date?

    private enum Phase {
        case starting
        case waitingForHead
        /// Collecting a short error answer for the dispatch to decide on (429, 401, a peer's 400).
        case collecting(HTTPResponseHead, [UInt8])
        case streaming
        case done
    }
    /// Reads the usage out of a streamed event stream; kept out of `Phase` so each read
    /// updates it in place instead of copying it out of the enum and back.
    private var usageTap: ServerSentEventUsageTap?

    private var phase = Phase.starting
    /// The status of the answer being streamed.
    private var streamStatus: UInt = 0
    private var outcomeRecorded = false
    /// Body bytes of the current upstream read, written to the client when the read is done.
    private var pendingBody: ByteBuffer?
    private let startedAt = NIODeadline.now()
    private var firstByteAt: NIODeadline?
    /// The connector's credential behind an external one, when the connector named it.
    private var connectorCredential: String?
    /// The credential the client's answer comes from, once one was tried.
    var credentialTag: String? { dispatch.tag }

    /// The user's session, open against `max_concurrent_sessions` until the exchange ends.
    private let sessionHold: SessionHold?

    /// A Chat Completions request: its answer is translated back from the Responses stream.
    private var chat: ChatStreamTranslator?
    /// A non-streamed chat answer's head, sent with the whole answer at the end.
    private var deferredHead: HTTPResponseHead?
    /// The route the client asked for, for metrics and history (the URI may have been translated).
    private let routeLabel: String?
    /// The OpenAI API routes (chat, images) answer every error in the OpenAI JSON shape; Codex's
    /// routes keep the reference's plain-text refusals (§7.6) for mixed fleets.
    private let speaksOpenAI: Bool

    init(runtime: GatewayRuntime, user: AuthenticatedUser, request: ProxiedRequest, eventLoop: any EventLoop, logger: Logger,
         responder: any ClientResponder) {
        let (head, body) = (request.head, request.body)
        sessionHold = request.hold
        chat = request.chat
        routeLabel = request.routeLabel
        speaksOpenAI = request.speaksOpenAI
        self.runtime = runtime
        self.user = user
        self.head = head
        self.body = body
        self.eventLoop = eventLoop
        self.logger = logger
        self.responder = responder
        // The body is read once here for the dispatch (continuation state), the assignment line and the history row (model).
        let summary = body.readableBytes > 0 ? ResponsesRequestSummary(json: body.readableBytesView) : nil
        self.summary = summary
        dispatch = CredentialDispatch(
            runtime: runtime, user: user,
            request: .init(method: head.method, uri: head.uri, headers: head.headers, body: body, summary: summary, transport: .http),
            eventLoop: eventLoop, logger: logger)
        dispatch.imageSlots = request.isImageRequest ? runtime.imageSlots : nil
    }

    func start() {
        runtime.metrics.proxiedRequestStarted()
        dispatch.start { [self] step in
            switch step {
            case .send(let plan, let attempt):
                if attempt.isNewSession { logAssignment(attempt.tag) }
                connect(plan, attempt: attempt)
            case .answer(let response, let outcome):
                finish(with: response, outcome: outcome)
            }
        }
    }

    /// The client went away: release the upstream connection at once.
    func clientDisconnected() {
        guard !isDone else { return }
        phase = .done
        dispatch.end()
        recordOutcome(.clientDisconnected, status: streamStatus > 0 ? Int(streamStatus) : nil, error: "client disconnected")
        connection?.abandon()
        connection = nil
    }

    func clientWritabilityChanged(_ writable: Bool) {
        connection?.setReading(writable)
    }

    private var isDone: Bool {
        if case .done = phase { return true }
        return false
    }

    // MARK: Sending

    private func connect(_ plan: UpstreamRequestPlan, attempt: CredentialDispatch.Attempt, fresh: Bool = false) {
        guard !isDone else { return }
        phase = .waitingForHead
        sending = (plan, attempt)
        connection?.abandon()
        connection = nil
        let connecting: EventLoopFuture<any UpstreamExchangeConnection>
        if let tunnel = plan.tunnelTag {
            connecting = runtime.reverseTunnels.openConnection(tunnel, fresh: fresh, on: eventLoop)
        } else {
            let pool = runtime.upstream.pool(for: eventLoop)
            // Usually a kept-alive connection is idle: the request goes out on it at once.
            if !fresh, let idle = pool.takeIdle(plan.target) { return connected(.success(PooledUpstreamConnection(idle, pool: pool)), plan, attempt) }
            connecting = pool.acquire(plan.target, fresh: fresh).map { PooledUpstreamConnection($0, pool: pool) }
        }
        let exchange = NIOLoopBound(self, eventLoop: eventLoop)
        connecting.whenComplete { result in exchange.value.connected(result, plan, attempt) }
    }

    private func connected(_ result: Result<any UpstreamExchangeConnection, any Error>, _ plan: UpstreamRequestPlan, _ attempt: CredentialDispatch.Attempt) {
        guard !isDone, dispatch.isCurrent(attempt) else {
            if case .success(let connection) = result { connection.discardUnused() }
            return
        }
        switch result {
        case .failure(let error):
            dispatch.upstreamFailed(error)
        case .success(let connection):
            self.connection = connection
            let upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: plan.uri, headers: plan.headers)
            let body = plan.body ?? self.body
            connection.execute(upstreamHead, body: body.readableBytes > 0 ? body : nil, delegate: self)
        }
    }

    // MARK: UpstreamResponseDelegate

    func upstreamReceivedHead(_ upstreamHead: ReceivedResponseHead) {
        guard case .waitingForHead = phase, let tag = dispatch.tag else { return }
        let status = upstreamHead.status.code
        if dispatch.earlyAnswer(status: status).needsDecision { return phase = .collecting(upstreamHead.head, []) }
        dispatch.upstreamResponding()

        let snapshot = runtime.snapshotMemo.snapshot(of: upstreamHead, tag: tag)
        // The weekly cycle hint is read before the rewrite removes it (Appendix A #4).
        weekStart = snapshot.weeklyWindowStart
        runtime.observe(snapshot, tag: tag)
        if let turnState = upstreamHead.first(name: ContinuationScan.turnStateHeaderName) { runtime.recordIssued([(.turnState, turnState)], tag: tag) }
        if status >= 400 { logger.error("upstream error from \(tag): status \(status)") }
        if dispatch.viaPeer { connectorCredential = upstreamHead.first(name: servingCredentialHeaderName) }
        let isEventStream = upstreamHead.first(name: "content-type", hasPrefix: "text/event-stream")
        let tracksUsage = status == 200 && isEventStream && (head.uri.hasPrefix("/v1/responses") || head.uri.hasPrefix("/v1/chat/completions"))
        usageTap = tracksUsage ? ServerSentEventUsageTap() : nil
        phase = .streaming
        streamStatus = status
        firstByteAt = .now()
        let aggregate = runtime.aggregate(for: user), now = runtime.now
        guard chat != nil, status == 200 else {
            chat = nil
            // The usual answer: its header lines go to the client from the bytes read, not as strings.
            responder?.sendHead(version: head.version, status: upstreamHead.status) { buffer in
                RateLimitHeaderRewriter.writeClientHeaderLines(of: upstreamHead, replacing: servingCredentialHeaderName, aggregate: aggregate,
                                                               servedBy: tag, into: &buffer)
            }
            return
        }
        var headers = RateLimitHeaderRewriter.clientResponseHeaders(upstreamHead.headers, with: aggregate, now: now)
        headers.replaceOrAdd(name: servingCredentialHeader, value: tag)
        headers.remove(name: "content-length")
        if chat?.stream == true {
            headers.replaceOrAdd(name: "content-type", value: "text/event-stream; charset=utf-8")
            responder?.sendHead(HTTPResponseHead(version: head.version, status: upstreamHead.status, headers: headers))
        } else {
            headers.replaceOrAdd(name: "content-type", value: "application/json")
            deferredHead = HTTPResponseHead(version: head.version, status: upstreamHead.status, headers: headers)
        }
    }

    func upstreamReceivedBody(_ buffer: ByteBuffer) {
        switch phase {
        case .collecting(let head, var bytes):
            if bytes.count < 64 * 1024 { bytes += buffer.readableBytesView.prefix(64 * 1024 - bytes.count) }
            phase = .collecting(head, bytes)
        case .streaming:
            usageTap?.consume(buffer)
            guard responder != nil else { return clientDisconnected() }
            if chat != nil {
                let translated = chat!.consume(buffer.readableBytesView)
                guard !translated.isEmpty else { return }
                return appendPendingBody(ByteBuffer(bytes: translated))
            }
            appendPendingBody(buffer)
        default:
            break
        }
    }

    /// The SSE events of one upstream read go to the client as one chunk at the end of the
    /// read: one trip down the pipeline per read instead of one per event.
    private func appendPendingBody(_ buffer: ByteBuffer) {
        if pendingBody == nil {
            pendingBody = buffer
        } else {
            var more = buffer
            pendingBody!.writeBuffer(&more)
        }
    }

    func upstreamReadComplete() {
        guard case .streaming = phase else { return }
        writePendingBody()
        responder?.flush()
    }

    private func writePendingBody() {
        guard let body = pendingBody, let responder else { return }
        pendingBody = nil
        responder.writeBody(body)
        if !responder.isClientWritable { connection?.setReading(false) }
    }

    func upstreamFinished() {
        connection = nil
        switch phase {
        case .collecting(let upstreamHead, let bytes):
            phase = .starting
            dispatch.upstreamAnswered(upstreamHead, body: bytes)
        case .streaming:
            phase = .done
            dispatch.end()
            let tap = usageTap
            usageTap = nil
            // A non-streamed chat answer goes out whole here, with its own end.
            let answeredWhole = chat != nil && finishChat()
            writePendingBody()
            if let usage = tap?.usage, let tag = dispatch.tag {
                runtime.recordUsage(usage, tag: tag, fallbackModel: requestedModel, user: user, weekStart: weekStart)
            }
            if let issued = tap?.issuedContinuations, let tag = dispatch.tag { runtime.recordIssued(issued, tag: tag) }
            // An event stream is whole only with its response.completed; other answers by their status.
            let complete = streamStatus < 400 && (tap?.sawCompleted ?? true)
            let outcome: ResponseOutcome = complete ? .completed : (streamStatus == 429 ? .upstreamRateLimited : .upstreamError)
            recordOutcome(outcome, status: Int(streamStatus), usage: tap?.usage,
                          error: complete ? nil : (streamStatus >= 400 ? "upstream answered \(streamStatus)" : "the event stream ended without response.completed"))
            if !answeredWhole { responder?.sendEnd() }
        default:
            break
        }
    }

    func upstreamFailed(_ error: UpstreamError) {
        let failed = connection
        connection = nil
        // A kept-alive connection that upstream closed while it sat idle: the request never got
        // there, so it goes once more on a new connection instead of failing the client.
        if case .waitingForHead = phase, error.kind == .closedBeforeResponse, failed?.wasReused == true, !retriedOnFreshConnection,
           let (plan, attempt) = sending, dispatch.isCurrent(attempt) {
            retriedOnFreshConnection = true
            logger.info("upstream closed a reused connection before answering; sending again on a new one")
            return connect(plan, attempt: attempt, fresh: true)
        }
        switch phase {
        case .streaming:
            // The head is out: the client can only learn of the failure from a cut stream.
            logger.warning("upstream \(dispatch.tag ?? "-") failed mid-response: \(error)")
            phase = .done
            dispatch.end()
            recordOutcome(.upstreamError, status: Int(streamStatus), error: "upstream failed mid-response: \(error)")
            // What did arrive still reaches the client before the cut.
            writePendingBody()
            responder?.flush()
            responder?.abortConnection()
        case .done:
            break
        default:
            dispatch.upstreamFailed(error)
        }
    }

    /// The end of a translated chat answer: the stream's last events (true: the caller ends it),
    /// or the whole non-streamed answer with its head and end — an error in the OpenAI shape when
    /// the backend failed (false).
    private func finishChat() -> Bool {
        guard var translator = chat else { return false }
        let rest = translator.finish()
        chat = translator
        guard let deferred = deferredHead else {
            if !rest.isEmpty { appendPendingBody(ByteBuffer(bytes: rest)) }
            return false
        }
        deferredHead = nil
        if let failure = translator.failure ?? (translator.sawEnd ? nil : "the upstream answer ended early") {
            responder?.send(.error(.badGateway, type: "api_error", code: "upstream_error", message: failure))
            return true
        }
        var head = deferred
        head.headers.replaceOrAdd(name: "content-length", value: String(rest.count))
        responder?.sendHead(head)
        responder?.writeBody(ByteBuffer(bytes: rest))
        responder?.sendEnd()
        return true
    }

    // MARK: Helpers

    private func finish(with response: GatewayResponse, outcome: ResponseOutcome) {
        guard !isDone else { return }
        phase = .done
        dispatch.end()
        connection?.abandon()
        connection = nil
        firstByteAt = .now()
        recordOutcome(outcome, status: Int(response.status.code), error: outcome == .completed ? nil : Self.summary(of: response))
        responder?.send(speaksOpenAI ? Self.openAIShaped(response) : response)
    }

    static func openAIShaped(_ response: GatewayResponse) -> GatewayResponse {
        guard response.status.code >= 400, !(response.headers.first(name: "content-type")?.hasPrefix("application/json") ?? false) else { return response }
        let message = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        var shaped = GatewayResponse.error(response.status, type: response.status.code < 500 ? "invalid_request_error" : "api_error",
                                           code: response.status == .tooManyRequests ? "rate_limit_exceeded" : "", message: message)
        if let retryAfter = response.headers.first(name: "retry-after") { shaped.headers.replaceOrAdd(name: "retry-after", value: retryAfter) }
        return shaped
    }

    /// Once per exchange, at its end.
    private func recordOutcome(_ outcome: ResponseOutcome, status: Int?, usage: CompletedUsage? = nil, error: String? = nil) {
        guard !outcomeRecorded else { return }
        outcomeRecorded = true
        sessionHold?.release()
        let now = NIODeadline.now()
        runtime.recordFinished(FinishedRequest(
            transport: .http, outcome: outcome, credential: credentialTag, connectorCredential: connectorCredential, user: user, requestID: logger[metadataKey: "request"]?.description ?? "",
            model: requestedModel, route: routeLabel ?? GatewayRoute.pathAndQuery(head.uri).path, status: status,
            timeToFirstByte: firstByteAt.map { $0 - startedAt }, duration: now - startedAt, usage: usage,
            failovers: max(0, dispatch.attempts - 1), error: error, countsTowardLimits: true))
        // Only once its row is on its way: "nothing in flight" then means the history has it all.
        runtime.metrics.proxiedRequestEnded()
    }

    /// The message of an OpenAI-style error answer (never anything from a request).
    static func summary(of response: GatewayResponse) -> String {
        let message = JSONValue.parse(response.body)?["error"]?["message"]?.stringValue
        return message.map { "\(response.status.code): \($0)" } ?? "\(response.status.code)"
    }

    /// The request body's top-level fields, nil when it is not a JSON object.
    private let summary: ResponsesRequestSummary?
    private var requestedModel: String? { summary?.model }

    /// The credential a new session got, at info: an operator can follow each session from it.
    private func logAssignment(_ tag: String) {
        guard logger.logLevel <= .info else { return }
        logger.info("\(GatewayRuntime.assignmentLine(tag: tag, sessionID: dispatch.sessionID, user: user, request: summary))")
    }
}
