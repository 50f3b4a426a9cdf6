import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import UpstreamHTTP

/// One proxied HTTP request (ocm-reference.md §7.3): select a credential, send upstream, fail
/// over on 429 before the first byte, then stream the answer to the client with the
/// rate-limit headers replaced by the user's aggregate, reading usage on the way.
/// Lives on the client connection's event loop: every callback it registers runs there (the
/// futures it waits on belong to that loop), which is what makes the unchecked Sendable sound.
final class HTTPProxyExchange: UpstreamResponseDelegate, @unchecked Sendable {
    private let runtime: GatewayRuntime
    private let user: AuthenticatedUser
    private let head: HTTPRequestHead
    private let body: ByteBuffer
    private let eventLoop: any EventLoop
    private let logger: Logger
    private weak var responder: (any ClientResponder)?
    private let sessionID: String?
    /// Requests and retries (429 failover, 401 refresh) tried so far.
    private var attempts = 0

    private var tag = ""
    private var plan: UpstreamRequestPlan?
    private var connection: (any UpstreamExchangeConnection)?
    private var interruptRegistration: UInt64?
    private var refreshedAfter401: Set<String> = []
    /// Start of the account's weekly window, for usage statistics; read before the rewrite.
    private var weekStart: Date?

    private enum Phase {
        case starting
        case waitingForHead
        /// Collecting a short error body to decide (429 failover, 401 refresh, external 400).
        case collecting(HTTPResponseHead, Decision, [UInt8])
        case streaming
        case done
    }
    /// Reads the usage out of a streamed event stream; kept out of `Phase` so each read
    /// updates it in place instead of copying it out of the enum and back.
    private var usageTap: ServerSentEventUsageTap?

    private enum Decision {
        case rateLimited
        case unauthorized
        case peerRejected
    }

    private var phase = Phase.starting
    /// The status of the answer being streamed.
    private var streamStatus: UInt = 0
    private var outcomeRecorded = false
    /// Body bytes of the current upstream read, written to the client when the read is done.
    private var pendingBody: ByteBuffer?
    private let startedAt = NIODeadline.now()
    private var firstByteAt: NIODeadline?
    /// The credential the client's answer comes from, once one was tried.
    var credentialTag: String? { tag.isEmpty ? nil : tag }

    init(runtime: GatewayRuntime, user: AuthenticatedUser, head: HTTPRequestHead, body: ByteBuffer, eventLoop: any EventLoop,
         logger: Logger, responder: any ClientResponder) {
        self.runtime = runtime
        self.user = user
        self.head = head
        self.body = body
        self.eventLoop = eventLoop
        self.logger = logger
        self.responder = responder
        sessionID = SessionKey.from(head.headers.map { ($0.name, $0.value) })
    }

    func start() {
        runtime.metrics.proxiedRequestStarted()
        runtime.refreshUnavailableCredentials(provider: user.provider, on: eventLoop).whenComplete { [self] _ in
            switch runtime.select(for: user, sessionID: sessionID) {
            case .failure(let failure):
                logger.info("no credential for \(user.provider): \(failure.explanation)")
                finish(with: .selectionFailed(failure), outcome: .noCredential)
            case .success(let selection):
                if selection.isNewSession { logAssignment(selection.tag) }
                attempt(selection.tag)
            }
        }
    }

    /// The client went away: release the upstream connection at once.
    func clientDisconnected() {
        guard !isDone else { return }
        phase = .done
        recordOutcome(.clientDisconnected)
        unregisterInterrupt()
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

    private func attempt(_ tag: String, rejectedToken: Secret? = nil) {
        guard !isDone else { return }
        attempts += 1
        self.tag = tag
        runtime.pollIfStale(tag)
        if !runtime.isExternal(tag), head.uri.hasPrefix("/v1/chat/completions"), !isAPIKey(tag) {
            return finish(with: .error(.badRequest, type: "invalid_request_error", message: "chat completions endpoint is only available in API key mode"),
                          outcome: .upstreamError)
        }
        registerInterrupt(tag)
        phase = .waitingForHead
        runtime.plan(for: tag, method: head.method, uri: head.uri, clientHeaders: head.headers, bodyLength: body.readableBytes,
                     webSocket: false, rejectedToken: rejectedToken, on: eventLoop)
            .flatMap { [self] plan -> EventLoopFuture<any UpstreamExchangeConnection> in
                self.plan = plan
                if let tunnel = plan.tunnelTag {
                    return runtime.reverseTunnels.openConnection(tunnel, on: eventLoop)
                }
                let pool = runtime.upstream.pool(for: eventLoop)
                return pool.acquire(plan.target).map { PooledUpstreamConnection($0, pool: pool) }
            }
            .whenComplete { [self] result in
                guard !isDone, self.tag == tag else {
                    if case .success(let connection) = result { connection.discardUnused() }
                    return
                }
                switch result {
                case .failure(let error as CredentialAccessError):
                    logger.error("credential \(tag) cannot be used: \(error)")
                    finish(with: .error(.internalServerError, type: "api_error", message: "credential \(tag) cannot be used: \(error)"), outcome: .upstreamError)
                case .failure(let error):
                    logger.error("upstream for \(tag) unreachable: \(error)")
                    finish(with: .error(.badGateway, type: "api_error", message: "\(error)"), outcome: .upstreamError)
                case .success(let connection):
                    send(on: connection)
                }
            }
    }

    private func send(on connection: any UpstreamExchangeConnection) {
        guard let plan else { return }
        self.connection = connection
        let upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: plan.uri, headers: plan.headers)
        connection.execute(upstreamHead, body: body.readableBytes > 0 ? body : nil, delegate: self)
    }

    // MARK: UpstreamResponseDelegate

    func upstreamReceivedHead(_ upstreamHead: HTTPResponseHead) {
        guard case .waitingForHead = phase else { return }
        // Interruptions stop waiting, never a response that is already streaming (§4.6).
        unregisterInterrupt()
        let status = upstreamHead.status.code
        if status == 429 { return phase = .collecting(upstreamHead, .rateLimited, []) }
        let external = runtime.isExternal(tag)
        if status == 401, !external, !refreshedAfter401.contains(tag) { return phase = .collecting(upstreamHead, .unauthorized, []) }
        if status == 400, external { return phase = .collecting(upstreamHead, .peerRejected, []) }

        let snapshot = RateLimitSnapshot(headers: upstreamHead.headers.map { ($0.name, $0.value) })
        // The weekly cycle hint is read before the rewrite removes it (Appendix A #4).
        weekStart = snapshot.weeklyWindowStart
        runtime.observe(snapshot, tag: tag)
        if status >= 400 { logger.error("upstream error from \(tag): status \(status)") }
        let headers = RateLimitHeaderRewriter.clientResponseHeaders(upstreamHead.headers, with: runtime.aggregate(for: user), now: runtime.now)
        let isEventStream = headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
        let tracksUsage = status == 200 && isEventStream && (head.uri.hasPrefix("/v1/responses") || head.uri.hasPrefix("/v1/chat/completions"))
        usageTap = tracksUsage ? ServerSentEventUsageTap() : nil
        phase = .streaming
        streamStatus = status
        firstByteAt = .now()
        responder?.sendHead(HTTPResponseHead(version: head.version, status: upstreamHead.status, headers: headers))
    }

    func upstreamReceivedBody(_ buffer: ByteBuffer) {
        switch phase {
        case .collecting(let head, let decision, var bytes):
            if bytes.count < 64 * 1024 { bytes += buffer.readableBytesView.prefix(64 * 1024 - bytes.count) }
            phase = .collecting(head, decision, bytes)
        case .streaming:
            usageTap?.consume(buffer)
            guard responder != nil else { return clientDisconnected() }
            // The SSE events of one upstream read go to the client as one chunk at the end of the
            // read: one trip down the pipeline per read instead of one per event.
            if pendingBody == nil {
                pendingBody = buffer
            } else {
                var more = buffer
                pendingBody!.writeBuffer(&more)
            }
        default:
            break
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
        case .collecting(let upstreamHead, let decision, let bytes):
            decide(decision, head: upstreamHead, body: bytes)
        case .streaming:
            phase = .done
            let tap = usageTap
            usageTap = nil
            writePendingBody()
            if let usage = tap?.usage { runtime.recordUsage(usage, tag: tag, fallbackModel: requestedModel, user: user, weekStart: weekStart) }
            // An event stream is whole only with its response.completed; other answers by their status.
            let complete = streamStatus < 400 && (tap?.sawCompleted ?? true)
            recordOutcome(complete ? .completed : (streamStatus == 429 ? .upstreamRateLimited : .upstreamError))
            responder?.sendEnd()
        default:
            break
        }
    }

    func upstreamFailed(_ error: UpstreamError) {
        connection = nil
        switch phase {
        case .streaming:
            // The head is out: the client can only learn of the failure from a cut stream.
            logger.warning("upstream \(tag) failed mid-response: \(error)")
            phase = .done
            recordOutcome(.upstreamError)
            // What did arrive still reaches the client before the cut.
            writePendingBody()
            responder?.flush()
            responder?.abortConnection()
        case .done:
            break
        default:
            logger.error("upstream \(tag) failed: \(error)")
            finish(with: .error(.badGateway, type: "api_error", message: error.message), outcome: .upstreamError)
        }
    }

    // MARK: Decisions on short error answers

    private func decide(_ decision: Decision, head upstreamHead: HTTPResponseHead, body: [UInt8]) {
        let headers = upstreamHead.headers.map { ($0.name, $0.value) }
        switch decision {
        case .unauthorized:
            // A token the backend refuses: refresh it once and try again (as the Codex CLI does).
            refreshedAfter401.insert(tag)
            attempt(tag, rejectedToken: plan?.grantToken)
        case .peerRejected:
            finish(with: runtime.peerRejected(tag, for: user), outcome: .upstreamError)
        case .rateLimited:
            let rejection = RateLimitRejection(headers: headers, body: Data(body), now: runtime.now)
            switch runtime.afterRateLimit(for: user, sessionID: sessionID, failedTag: tag, rejection: rejection, attemptsSoFar: attempts) {
            case .retry(let next):
                logger.info("retrying with credential \(next.tag) after 429 from \(tag)")
                attempt(next.tag)
            case .answer(let response):
                finish(with: response, outcome: .upstreamRateLimited)
            }
        }
    }

    // MARK: Helpers

    private func finish(with response: GatewayResponse, outcome: ResponseOutcome) {
        guard !isDone else { return }
        phase = .done
        unregisterInterrupt()
        firstByteAt = .now()
        recordOutcome(outcome)
        responder?.send(response)
    }

    /// Once per exchange, at its end.
    private func recordOutcome(_ outcome: ResponseOutcome) {
        guard !outcomeRecorded else { return }
        outcomeRecorded = true
        let now = NIODeadline.now()
        runtime.metrics.proxiedRequestEnded()
        runtime.metrics.recordResponse(.http, outcome: outcome, credential: credentialTag, user: user.name,
                                       timeToFirstByte: firstByteAt.map { $0 - startedAt }, duration: now - startedAt)
    }

    private func registerInterrupt(_ tag: String) {
        unregisterInterrupt()
        let eventLoop = self.eventLoop
        interruptRegistration = runtime.interrupts.register(.init(credential: tag, balancer: runtime.interruptBalancer(for: user), scope: user.scope) { [weak self] reason in
            guard let exchange = self else { return }
            eventLoop.execute { exchange.interrupted(reason) }
        })
    }

    private func unregisterInterrupt() {
        if let id = interruptRegistration { runtime.interrupts.unregister(id) }
        interruptRegistration = nil
    }

    private func interrupted(_ reason: String) {
        interruptRegistration = nil
        guard case .waitingForHead = phase else { return }
        connection?.abandon()
        connection = nil
        let message = attempts > 1 ? "credential became unavailable while retrying the request" : "credential became unavailable while processing the request"
        logger.warning("\(message): \(reason)")
        finish(with: .credentialUnavailable(runtime.currentFailure(for: user), fallback: message), outcome: .interrupted)
    }

    private func isAPIKey(_ tag: String) -> Bool {
        runtime.withPool { $0[tag]?.isAPIKey ?? false }
    }

    private lazy var requestedModel: String? = ResponsesRequestSummary(json: body.readableBytesView)?.model

    private func logAssignment(_ tag: String) {
        guard logger.logLevel <= .debug else { return }
        let request = ResponsesRequestSummary(json: body.readableBytesView)
        logger.debug("\(GatewayRuntime.assignmentLine(tag: tag, sessionID: sessionID, user: user, request: request))")
    }
}
