import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore

/// The way one proxied request — an HTTP request or a WebSocket upgrade — goes through the pool
/// until upstream answers (ocm-reference.md §7.3, §8.2): pick a credential, build the upstream
/// request, then on an answer before the first byte reached the client: 429 → mark it and fail
/// over, 401 → refresh the token once and resend, a peer's 400 → rest it, a token that cannot be
/// had → the next credential; interruptions while waiting; a cap on attempts. The transports
/// only move bytes: they carry out each `Step` and report what upstream did, so the same failure
/// gives the same answer on both.
///
/// Confined to the client connection's event loop: it is created there, every call comes from
/// there, and the futures it waits on complete there.
final class CredentialDispatch {
    /// What the transport does next.
    enum Step {
        /// Connect and send on this plan; report back through `upstreamResponding`,
        /// `upstreamAnswered`, or `upstreamFailed`, passing `attempt` so late results of an
        /// abandoned attempt are recognised.
        case send(UpstreamRequestPlan, attempt: Attempt)
        /// Nothing more to try: answer the client with this (and drop any upstream connection).
        case answer(GatewayResponse, ResponseOutcome)
    }

    struct Attempt: Equatable {
        var number: Int
        var tag: String
        /// This attempt started a new sticky assignment.
        var isNewSession: Bool
    }

    /// The parts of the client's request the dispatch needs.
    struct Request {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        /// nil for a WebSocket upgrade.
        var body: ByteBuffer?
        /// The body's summary, read once for the whole exchange (nil when it is not a JSON object).
        var summary: ResponsesRequestSummary?
        var transport: ResponseTransport
    }

    private let runtime: GatewayRuntime
    private let user: AuthenticatedUser
    private let request: Request
    private let eventLoop: any EventLoop
    private let logger: Logger
    let sessionID: String?
    private var perform: ((Step) -> Void)?

    /// For image requests: the accounts that may take one, and the slot the current attempt holds.
    var imageSlots: ImageSlots?
    private var heldImageSlot: String?
    private var imageDeadline: NIODeadline?

    private(set) var current: Attempt?
    private var plan: UpstreamRequestPlan?
    private var refreshedAfter401: Set<String> = []
    private var interruptRegistration: UInt64?
    private var waitingForUpstream = false
    private var finished = false

    init(runtime: GatewayRuntime, user: AuthenticatedUser, request: Request, eventLoop: any EventLoop, logger: Logger) {
        self.runtime = runtime
        self.user = user
        self.request = request
        self.eventLoop = eventLoop
        self.logger = logger
        sessionID = SessionKey.from(request.headers)
        continuation = request.body.map {
            RequestContinuation(summary: request.summary, body: $0.readableBytesView, turnStateHeader: request.headers.first(name: ContinuationScan.turnStateHeader))
        }
    }

    /// The continuation state an HTTP request carries (a WebSocket's travels in its messages).
    private let continuation: RequestContinuation?

    /// The credential tried last, if any.
    var tag: String? { current?.tag }
    /// Attempts so far (429 failovers, 401 refreshes and token failures each add one).
    var attempts: Int { current?.number ?? 0 }

    func isCurrent(_ attempt: Attempt) -> Bool { !finished && current == attempt }

    // MARK: Driving

    /// Selects the first credential; every step goes to `perform`, on the event loop.
    func start(_ perform: @escaping (Step) -> Void) {
        self.perform = perform
        // Usually no credential file is due for a re-read: then selection goes ahead at once.
        guard let refreshing = runtime.refreshUnavailableCredentials(provider: user.provider, on: eventLoop) else { return selectFirst() }
        let dispatch = NIOLoopBound(self, eventLoop: eventLoop)
        refreshing.whenComplete { _ in dispatch.value.selectFirst() }
    }

    private func selectFirst() {
        guard !finished else { return }
        if continueTurn() { return }
        let (excluded, someFull) = imageSlots?.unavailable(runtime.configuration) ?? ([], false)
        switch runtime.select(for: user, sessionID: sessionID, excluding: excluded) {
        case .failure(let failure):
            if someFull, let imageSlots { return waitForImageSlot(imageSlots) }
            logger.info("no credential for \(user.provider): \(failure.explanation)")
            answer(.selectionFailed(failure), .noCredential)
        case .success(let selection):
            attempt(selection.tag, isNewSession: selection.isNewSession)
        }
    }

    /// Every account that may serve images is busy: wait for a slot (once in all, `patience`
    /// long), then try again, or answer 429.
    private func waitForImageSlot(_ slots: ImageSlots) {
        let deadline = imageDeadline ?? .now() + slots.patience
        imageDeadline = deadline
        guard NIODeadline.now() < deadline else { return answerImagesBusy() }
        let dispatch = NIOLoopBound(self, eventLoop: eventLoop)
        slots.nextRelease(on: eventLoop).whenComplete { result in
            switch result {
            case .success: dispatch.value.selectFirst()
            case .failure: dispatch.value.answerImagesBusy()
            }
        }
    }

    private func answerImagesBusy() {
        let seconds = Int((imageSlots?.patience.nanoseconds ?? 0) / 1_000_000_000)
        answer(.error(.tooManyRequests, type: "rate_limit_exceeded", code: "image_concurrency",
                      message: "every account that may generate images is busy (image_concurrency); try again shortly")
            .retrying(after: max(1, seconds)), .noCredential)
    }

    private func releaseImageSlot() {
        guard let tag = heldImageSlot else { return }
        heldImageSlot = nil
        imageSlots?.release(tag)
    }

    /// A request that continues a turn goes to the credential that started it, whatever
    /// rebalancing decided since (it takes effect at the next turn); one that continues a
    /// response its credential can no longer serve is told so, as the backend would, and Codex
    /// sends the whole input again. True when the request was placed here.
    private func continueTurn() -> Bool {
        guard let continuation else { return false }
        let (target, continuesResponse) = runtime.continuationTarget(continuation, for: user)
        switch target {
        case .continueOn(let tag):
            logger.debug("continuing a turn on credential \(tag)")
            attempt(tag, isNewSession: false)
            return true
        case .lost(let tag) where continuesResponse:
            logger.info("credential \(tag) cannot continue its response any more; the client will resend the whole input")
            answer(.previousResponseNotFound(continuation.previousResponseID ?? ""), .upstreamError)
            return true
        case .lost, .unbound:
            return false
        }
    }

    /// Upstream began an answer the client gets as it is: stop waiting (interruptions no longer
    /// apply, §4.6).
    func upstreamResponding() {
        waitingForUpstream = false
        unregisterInterrupt()
    }

    /// Upstream answered before the first byte with a status whose `EarlyAnswer` needs a decision.
    func upstreamAnswered(_ head: HTTPResponseHead, body: [UInt8]) {
        guard !finished, let current else { return }
        waitingForUpstream = false
        unregisterInterrupt()
        switch earlyAnswer(status: head.status.code) {
        case .unauthorized:
            // A token the backend refuses: refresh it once and try again (as the Codex CLI does).
            refreshedAfter401.insert(current.tag)
            logger.info("credential \(current.tag) was refused with 401; refreshing its token and retrying")
            attempt(current.tag, isNewSession: current.isNewSession, rejectedToken: plan?.grantToken)
        case .peerRejected:
            runtime.recordUpstreamRejected(current.tag, logger: logger)
            answer(.credentialUnavailable(runtime.currentFailure(for: user), fallback: "upstream rejected credential \(current.tag)"), .upstreamError)
        case .rateLimited:
            rateLimited(current, rejection: RateLimitRejection(headers: head.headers.map { ($0.name, $0.value) }, body: Data(body), now: runtime.now))
        case .passThrough:
            break
        }
    }

    /// The connection to upstream failed before an answer began.
    func upstreamFailed(_ error: any Error) {
        guard !finished, let tag else { return }
        logger.error("upstream for \(tag) failed: \(error)")
        answer(.error(.badGateway, type: "api_error", message: "upstream for credential \(tag) failed: \(error)"), .upstreamError)
    }

    /// The request is over — streamed to its end, or the client went away: nothing more is done
    /// for it (and the transport is let go).
    func end() {
        finished = true
        releaseImageSlot()
        waitingForUpstream = false
        unregisterInterrupt()
        perform = nil
    }

    /// The current attempt goes to another instance, not to the backend.
    var viaPeer: Bool { plan?.viaPeer ?? tag.map(runtime.isExternal) ?? false }

    /// How the transport must treat an answer with this status for the current credential.
    func earlyAnswer(status: UInt) -> EarlyAnswer {
        guard let tag else { return .passThrough }
        return EarlyAnswer(status: status, isExternal: viaPeer, alreadyRefreshed: refreshedAfter401.contains(tag))
    }

    // MARK: Attempts

    private func attempt(_ tag: String, isNewSession: Bool, rejectedToken: Secret? = nil) {
        guard !finished else { return }
        if let imageSlots, heldImageSlot != tag {
            releaseImageSlot()
            // Another request took the last slot since the selection: choose again.
            guard imageSlots.take(tag, configuration: runtime.configuration) else { return selectFirst() }
            heldImageSlot = tag
        }
        let attempt = Attempt(number: attempts + 1, tag: tag, isNewSession: isNewSession)
        current = attempt
        plan = nil
        // Looked up once for the poll and the plan.
        let backend = runtime.backend(tag)
        runtime.pollIfStale(tag, backend: backend)
        let (headers, body) = requestFor(tag)
        switch runtime.planNow(for: tag, backend: backend, method: request.method, uri: request.uri, clientHeaders: headers, bodyLength: body?.readableBytes,
                               webSocket: request.transport == .websocket, rejectedToken: rejectedToken, on: eventLoop) {
        case .ready(let plan): planned(.success(plan), attempt: attempt, body: body)
        case .failed(let error): planned(.failure(error), attempt: attempt, body: body)
        case .pending(let future):
            let dispatch = NIOLoopBound(self, eventLoop: eventLoop)
            future.whenComplete { result in dispatch.value.planned(result, attempt: attempt, body: body) }
        }
    }

    private func planned(_ result: Result<UpstreamRequestPlan, any Error>, attempt: Attempt, body: ByteBuffer?) {
        guard isCurrent(attempt) else { return }
        switch result {
        case .success(var plan):
            plan.body = body
            self.plan = plan
            waitingForUpstream = true
            registerInterrupt(attempt.tag)
            perform?(.send(plan, attempt: attempt))
        case .failure(let error):
            tokenUnavailable(attempt, error: error)
        }
    }

    /// The client's headers and body as they may go to `tag`: continuation state another account
    /// issued is left out, never sent along.
    private func requestFor(_ tag: String) -> (HTTPHeaders, ByteBuffer?) {
        guard let continuation, !continuation.isEmpty, let body = request.body else { return (request.headers, request.body) }
        let foreign = runtime.foreignState(continuation, destination: tag)
        guard !foreign.isEmpty else { return (request.headers, body) }
        logger.info("leaving another account's continuation state out of the request to \(tag)")
        var headers = request.headers
        if foreign.turnState { headers.remove(name: ContinuationScan.turnStateHeader) }
        let rewritten = RequestContinuation.removing(foreign, from: body.readableBytesView).map { ByteBuffer(bytes: $0) } ?? body
        return (headers, rewritten)
    }

    /// The credential's access token could not be had (refresh refused, file unreadable, connector
    /// gone): the session moves on when the pool has another credential, else the client learns why.
    private func tokenUnavailable(_ attempt: Attempt, error: any Error) {
        logger.error("credential \(attempt.tag) cannot be used: \(error)")
        let unavailable = GatewayResponse.error(.serviceUnavailable, type: "api_error", code: "credential_unavailable",
                                                message: "credential \(attempt.tag) cannot be used: \(error)")
        guard attempts < PoolPolicy.maximumAttempts,
              case .success(let next) = runtime.select(for: user, sessionID: sessionID, excluding: imageSlots?.unavailable(runtime.configuration).tags ?? []),
              next.tag != attempt.tag else {
            return answer(unavailable, .upstreamError)
        }
        logger.info("retrying with credential \(next.tag): \(attempt.tag) cannot be used")
        self.attempt(next.tag, isNewSession: true)
    }

    /// After a 429 from the current credential: the next one for the session (§4.4), or the
    /// client's answer when there is none or too many were tried (§7.6).
    private func rateLimited(_ failed: Attempt, rejection: RateLimitRejection) {
        runtime.metrics.recordRateLimited(credential: failed.tag)
        guard attempts < PoolPolicy.maximumAttempts else {
            runtime.recordRateLimited(failed.tag, rejection: rejection)
            return answer(.credentialUnavailable(runtime.currentFailure(for: user), fallback: "credential \(failed.tag) is rate-limited"),
                          .upstreamRateLimited)
        }
        switch runtime.failover(for: user, sessionID: sessionID, failedTag: failed.tag, rejection: rejection, logger: logger,
                                excluding: imageSlots?.unavailable(runtime.configuration).tags ?? []) {
        case .success(let next):
            logger.info("retrying with credential \(next.tag) after 429 from \(failed.tag)")
            attempt(next.tag, isNewSession: true)
        case .failure(let failure):
            answer(.credentialUnavailable(failure, fallback: "all credentials rate-limited"), .upstreamRateLimited)
        }
    }

    private func answer(_ response: GatewayResponse, _ outcome: ResponseOutcome) {
        guard !finished else { return }
        finished = true
        releaseImageSlot()
        waitingForUpstream = false
        unregisterInterrupt()
        let perform = self.perform
        self.perform = nil
        perform?(.answer(response, outcome))
    }

    // MARK: Interruptions

    private func registerInterrupt(_ tag: String) {
        unregisterInterrupt()
        let dispatch = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        // Registered without the balancer: a rebalance moves sessions at their next turn and does
        // not cut a request already under way; only a credential that stops serving does.
        interruptRegistration = runtime.interrupts.register(.init(credential: tag, balancer: nil, scope: user.scope) { reason in
            eventLoop.execute { dispatch.value.interrupted(reason) }
        })
    }

    private func unregisterInterrupt() {
        if let id = interruptRegistration { runtime.interrupts.unregister(id) }
        interruptRegistration = nil
    }

    private func interrupted(_ reason: String) {
        interruptRegistration = nil
        guard waitingForUpstream, !finished else { return }
        let message = attempts > 1 ? "credential became unavailable while retrying the request" : "credential became unavailable while processing the request"
        logger.warning("\(message): \(reason)")
        answer(.credentialUnavailable(runtime.currentFailure(for: user), fallback: message), .interrupted)
    }
}
