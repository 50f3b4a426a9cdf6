import Foundation
import Logging
import NIOCore
import NIOWebSocket
import PoolCore
import Zlib

/// Relays one Codex WebSocket session between the client and the upstream account it is pinned
/// to (§8.4): messages pass unchanged except `codex.rate_limits` (replaced in place by the
/// user's aggregate) and `error` (`status_code` only); usage is read from `response.completed`.
/// It is confined to the client channel's event loop; upstream is on the same loop when it is a
/// socket and on its session's loop when it is a tunnel stream, so calls to the upstream leg hop
/// (`onUpstreamLeg`) and the legs reach the relay through its loop-bound reference.
final class WebSocketRelay {
    private let runtime: GatewayRuntime
    private let session: PreparedWebSocketSession
    private let clientLeg: WebSocketLegHandler
    private let upstreamLeg: NIOLoopBound<WebSocketLegHandler>
    let eventLoop: any EventLoop
    private let clientChannel: any Channel
    private let logger: Logger
    private var interruptRegistration: UInt64?
    private var closed = false

    /// One entry per forwarded `response.create`, answered in order by `response.completed`.
    private var pendingCreates: [PendingTurn] = []

    private struct PendingTurn {
        var warmUp: Bool
        var model: String?
        /// The request continues a turn or response (a 429 on it is better resent elsewhere).
        var continues = false
        var startedAt = NIODeadline.now()
        var firstByteAt: NIODeadline?
    }
    private var loggedAssignment = false
    /// Start of the account's weekly window, from its latest `codex.rate_limits`, for usage statistics.
    private var weekStart: Date?
    private var lastRateLimits = RateLimitsEventMemo()

    init(runtime: GatewayRuntime, session: PreparedWebSocketSession, clientChannel: any Channel, clientLeg: WebSocketLegHandler) {
        self.runtime = runtime
        self.session = session
        self.clientChannel = clientChannel
        self.clientLeg = clientLeg
        upstreamLeg = session.upstreamLeg
        eventLoop = clientChannel.eventLoop
        var logger = runtime.logger
        logger[metadataKey: "request"] = "\(session.requestID)"
        self.logger = logger
    }

    func start() {
        runtime.metrics.webSocketOpened(credential: session.tag, user: session.user.name)
        let relay = NIOLoopBound(self, eventLoop: eventLoop)
        // Unregistered when the relay closes, so holding the relay here ends with it.
        interruptRegistration = runtime.interrupts.register(.init(credential: session.tag, balancer: runtime.interruptBalancer(for: session.user),
                                                                  scope: session.user.scope) { reason in
            relay.eventLoop.execute { relay.value.interrupted(reason) }
        })
        clientLeg.attach(relay)
        onUpstreamLeg { $0.attach(relay) }
        session.upstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        session.upstream.read()
    }

    /// Set when the session must end; it ends once the turn in progress has delivered its
    /// last event (so the client still sees, e.g., the 429 that caused the interruption).
    private var pendingInterruption: String?
    private var interruptionDeadline: Scheduled<Void>?
    static let interruptionGrace: TimeAmount = .seconds(10)

    private func interrupted(_ reason: String) {
        interruptRegistration = nil
        guard !closed, pendingInterruption == nil else { return }
        logger.info("closing WebSocket session on \(session.tag): \(reason)")
        pendingInterruption = reason
        guard !pendingCreates.isEmpty else { return closeForInterruption() }
        interruptionDeadline = eventLoop.assumeIsolated().scheduleTask(in: Self.interruptionGrace) { [self] in closeForInterruption() }
    }

    private func closeForInterruption() {
        interruptionDeadline?.cancel()
        interruptionDeadline = nil
        close(code: .unknown(1012), reason: "credential changed; reconnect", unfinished: .interrupted)
    }

    // MARK: Frames

    func received(_ message: WebSocketMessage, from side: WebSocketLegHandler.Side) {
        guard !closed else { return }
        switch message.opcode {
        case .text, .binary:
            side == .client ? fromClient(message) : fromUpstream(message)
        case .ping:
            send(WebSocketMessage(opcode: .pong, payload: message.payload), to: side)
        case .connectionClose:
            let code = message.payload.getInteger(at: message.payload.readerIndex, as: UInt16.self).map { WebSocketErrorCode(codeNumber: Int($0)) }
            close(code: code ?? .normalClosure, reason: side == .client ? "client closed" : "upstream closed",
                  unfinished: side == .client ? .clientDisconnected : .upstreamError)
        default:
            break
        }
    }

    private func fromClient(_ message: WebSocketMessage) {
        var data = message.payload
        if message.opcode == .text, let request = ResponsesRequestSummary(json: data.readableBytesView), request.type == "response.create" {
            if request.generate != false, case .failure(let refusal) = runtime.admit(session.user, sessionKey: nil, countsRequest: true, logger: logger) {
                return refuseTurn(refusal, model: request.model)
            }
            let continues: Bool
            switch placeTurn(data, summary: request) {
            case .forward(let continuing): continues = continuing
            case .forwardInstead(let rewritten):
                data = rewritten
                continues = true
            case .answered: return
            }
            let warmUp = request.generate == false
            let model = request.model
            pendingCreates.append(PendingTurn(warmUp: warmUp, model: model, continues: continues))
            if !warmUp, session.isNewSession, !loggedAssignment {
                loggedAssignment = true
                let line = GatewayRuntime.assignmentLine(tag: session.tag, sessionID: session.sessionID, user: session.user, request: request)
                logger.info("\(line) (websocket)")
            }
        }
        send(WebSocketMessage(opcode: message.opcode, payload: data), to: .upstream)
        if !session.upstream.isWritable { clientChannel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
    }

    private enum Placement {
        /// Forward it as it is; true when it continues a turn or response.
        case forward(continues: Bool)
        /// Forward this instead: another account's continuation state left out.
        case forwardInstead(ByteBuffer)
        /// The client was answered here; nothing goes upstream.
        case answered
    }

    /// Where a `response.create` belongs (codex-wire-2026.md §1): a turn that another account
    /// started, or a response it made, continues there — the session is held on that account
    /// and the client told, as the backend tells it, that this socket does not have the
    /// response; it reconnects and resends the whole input, which then lands there. State from
    /// an account that cannot serve any more is left out, never sent to this one.
    private func placeTurn(_ data: ByteBuffer, summary: ResponsesRequestSummary) -> Placement {
        let state = RequestContinuation(summary: summary, body: data.readableBytesView, turnStateHeader: nil)
        guard !state.isEmpty else { return .forward(continues: false) }
        let continues = state.turnState != nil || state.previousResponseID != nil
        let (target, continuesResponse) = runtime.continuationTarget(state, for: session.user)
        switch target {
        case .continueOn(let tag) where tag != session.tag:
            logger.info("the turn continues on \(tag), not on this WebSocket's \(session.tag); the client reconnects")
            runtime.holdSession(session.sessionID, of: session.user, on: tag)
            return answerPreviousResponseNotFound(state)
        case .lost(let tag) where continuesResponse && tag != session.tag:
            logger.info("credential \(tag) cannot continue its response any more; the client will resend the whole input")
            return answerPreviousResponseNotFound(state)
        default:
            let foreign = runtime.foreignState(state, destination: session.tag)
            guard !foreign.isEmpty, let rewritten = RequestContinuation.removing(foreign, from: data.readableBytesView) else {
                return .forward(continues: continues)
            }
            logger.info("leaving another account's continuation state out of the request to \(session.tag)")
            return .forwardInstead(ByteBuffer(bytes: rewritten))
        }
    }

    private func answerPreviousResponseNotFound(_ state: RequestContinuation) -> Placement {
        send(.text(ByteBuffer(bytes: Self.previousResponseNotFound(state.previousResponseID).serialized)), to: .client)
        return .answered
    }

    /// The backend's wrapped error for a response it does not have (codex-wire-2026.md §1).
    static func previousResponseNotFound(_ id: String?) -> JSONValue {
        .object([
            "type": .string("error"), "status_code": .integer(400),
            "error": .object([
                "type": .string("invalid_request_error"), "code": .string("previous_response_not_found"), "param": .string("previous_response_id"),
                "message": .string("Previous response with id '\(id ?? "")' not found."),
            ]),
        ])
    }

    /// The pool's view in place of the account's (nil: not such an event after all, it goes as it came),
    /// the account's noted first.
    private func rewriteRateLimits(_ bytes: UnsafeRawBufferPointer) -> ByteBuffer? {
        guard let event = lastRateLimits.event(of: bytes) else { return nil }
        let now = runtime.now
        let snapshot = RateLimitSnapshot(rateLimitsEvent: event, now: now)
        runtime.observe(snapshot, tag: session.tag)
        weekStart = snapshot.weeklyWindowStart ?? weekStart
        if let family = snapshot.additional.first, !snapshot.hasUsageData {
            // Another family's event carries that family's pool view, not Codex's own.
            let pooled = runtime.additionalLimits(for: session.user).first { $0.id == family.id } ?? family
            return ByteBuffer(bytes: WebSocketEventRewriter.rewriteRateLimits(event, in: bytes, family: pooled, now: now))
        }
        let aggregate = runtime.aggregate(for: session.user)
        return lastRateLimits.rewritten(with: aggregate, now: now) {
            WebSocketEventRewriter.rewriteRateLimits(event, in: bytes, with: aggregate, now: now)
        }
    }

    private func fromUpstream(_ message: WebSocketMessage) {
        let data = message.payload
        // The message the client gets instead, when the gateway rewrote it.
        var replacement: ByteBuffer?
        noteFirstByte()
        if message.opcode == .text {
            let (kind, event) = data.withUnsafeReadableBytes { WebSocketEventRewriter.kind(ofBytes: $0) }
            switch kind {
            case .rateLimits:
                replacement = data.withUnsafeReadableBytes { rewriteRateLimits($0) }
            case .error(let status):
                let now = runtime.now
                let turn = pendingCreates.isEmpty ? nil : pendingCreates.removeFirst()
                if let turn {
                    let code = event?["error"]?["code"]?.stringValue ?? event?["error"]?["type"]?.stringValue
                    finishTurn(turn, status == 429 ? .upstreamRateLimited : .upstreamError,
                               error: "upstream error event \(status.map(String.init) ?? "")\(code.map { " \($0)" } ?? "")")
                }
                if status == 429 { runtime.metrics.recordRateLimited(credential: session.tag) }
                if status == 429, let rejection = RateLimitRejection(errorEvent: Data(data.readableBytesView), now: now) {
                    runtime.recordRateLimited(session.tag, rejection: rejection)
                }
                if status == 429, turn?.continues == true, runtime.hasOtherCredential(for: session.user, than: session.tag) {
                    // Codex never retries a 429; told the response is gone, it resends the whole
                    // input on a new socket, which the pool places on another account.
                    logger.info("\(session.tag) is rate-limited mid-turn; the client resends the turn to another account")
                    replacement = ByteBuffer(bytes: Self.previousResponseNotFound(nil).serialized)
                } else if let event {
                    replacement = ByteBuffer(bytes: WebSocketEventRewriter.rewriteError(event, status: status, aggregate: runtime.aggregate(for: session.user), now: now))
                }
            case .metadata:
                if let turnState = ContinuationScan.turnState(inMetadataEvent: data.readableBytesView) {
                    runtime.recordIssued([(.turnState, turnState)], tag: session.tag)
                }
            case .completed(let usage):
                runtime.recordIssued(ContinuationScan.issued(byCompletedEvent: data.readableBytesView), tag: session.tag)
                let request = pendingCreates.isEmpty ? nil : pendingCreates.removeFirst()
                if let request { finishTurn(request, .completed, usage: usage) }
                if request?.warmUp != true, let usage {
                    runtime.recordUsage(usage, tag: session.tag, fallbackModel: request?.model, user: session.user, weekStart: weekStart)
                }
            case .failed:
                // The turn is over all the same: take it off the queue, or the next turn's
                // completion would be booked against it.
                if !pendingCreates.isEmpty { finishTurn(pendingCreates.removeFirst(), .upstreamError) }
            case .other:
                break
            }
        }
        // Unchanged: all but a few events of a turn.
        send(replacement.map { WebSocketMessage(opcode: message.opcode, payload: $0) } ?? message, to: .client)
        if pendingInterruption != nil, pendingCreates.isEmpty { return closeForInterruption() }
        pauseUpstreamWhileClientIsFull()
    }

    /// The turn under way had its first byte from upstream now, unless it had one already.
    private func noteFirstByte() {
        if !pendingCreates.isEmpty, pendingCreates[0].firstByteAt == nil { pendingCreates[0].firstByteAt = .now() }
    }

    /// Upstream stops being read while the client cannot take more (`writabilityChanged` resumes it).
    private func pauseUpstreamWhileClientIsFull() {
        if !clientChannel.isWritable { session.upstream.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
    }

    /// How short a message read from `side` must be to reach the other side as the frame it came
    /// in (0: none may): upstream's, when the client's leg would not compress it.
    func unchangedFrameSizeLimit(from side: WebSocketLegHandler.Side) -> Int {
        guard side == .upstream, !closed else { return 0 }
        return clientLeg.deflate == nil ? .max : PerMessageDeflate.minimumCompressedSize
    }

    /// Upstream messages the relay does nothing with (output deltas), as the frames they came
    /// in: what `fromUpstream` does for such a message, once for the run.
    func relayUnchangedFrames(_ frames: ByteBuffer, sharingItsBuffer sharing: Bool, from side: WebSocketLegHandler.Side) {
        guard !closed, side == .upstream else { return }
        noteFirstByte()
        clientLeg.sendUnchanged(frames, sharing: sharing)
        pauseUpstreamWhileClientIsFull()
    }

    func writabilityChanged(_ side: WebSocketLegHandler.Side, writable: Bool) {
        // A leg that cannot keep up stops reading on the other.
        let other = side == .client ? session.upstream : clientChannel
        other.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
        if writable { other.read() }
    }

    // MARK: Ending

    /// Ends both legs: a close frame to each, then the connections. Turns still waiting for
    /// their answer are counted as `unfinished`.
    func close(code: WebSocketErrorCode, reason: String, unfinished: ResponseOutcome) {
        guard !closed else { return }
        closed = true
        interruptionDeadline?.cancel()
        if let id = interruptRegistration { runtime.interrupts.unregister(id) }
        interruptRegistration = nil
        logger.debug("WebSocket session on \(session.tag) ended: \(reason)")
        runtime.metrics.webSocketClosed()
        for turn in pendingCreates { finishTurn(turn, unfinished) }
        pendingCreates.removeAll()
        var payload = clientChannel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.write(webSocketErrorCode: code)
        payload.writeString(String(reason.prefix(100)))
        let closeMessage = WebSocketMessage(opcode: .connectionClose, payload: payload)
        clientLeg.send(closeMessage)
        clientLeg.detach()
        clientChannel.close(promise: nil)
        let upstream = session.upstream
        onUpstreamLeg { leg in
            leg.send(closeMessage)
            leg.detach()
            upstream.close(promise: nil)
        }
    }

    /// A turn over one of the user's limits: the client gets an `error` event, upstream nothing.
    private func refuseTurn(_ refusal: UserLimitRefusal, model: String?) {
        send(.text(ByteBuffer(bytes: runtime.userLimitEvent(refusal).serialized)), to: .client)
        runtime.recordFinished(FinishedRequest(
            transport: .websocket, outcome: .userLimited, credential: nil, user: session.user, requestID: session.requestID, model: model,
            route: "responses", status: 429, timeToFirstByte: nil, duration: .zero, error: refusal.message(now: runtime.now)))
    }

    /// Counts a model turn (warm-ups are not answers and are left out).
    private func finishTurn(_ turn: PendingTurn, _ outcome: ResponseOutcome, usage: CompletedUsage? = nil, error: String? = nil) {
        guard !turn.warmUp else { return }
        runtime.recordFinished(FinishedRequest(
            transport: .websocket, outcome: outcome, credential: session.tag, connectorCredential: session.connectorCredential, user: session.user,
            requestID: session.requestID, model: turn.model,
            route: "responses", status: nil, timeToFirstByte: turn.firstByteAt.map { $0 - turn.startedAt }, duration: .now() - turn.startedAt,
            usage: usage, error: error ?? (outcome == .completed ? nil : outcome.rawValue.replacingOccurrences(of: "_", with: " ")),
            countsTowardLimits: true))
    }

    private func send(_ message: WebSocketMessage, to side: WebSocketLegHandler.Side) {
        switch side {
        case .client: clientLeg.send(message)
        case .upstream: onUpstreamLeg { $0.send(message) }
        }
    }

    private func onUpstreamLeg(_ call: @escaping @Sendable (WebSocketLegHandler) -> Void) {
        let leg = upstreamLeg
        if leg.eventLoop.inEventLoop { return call(leg.value) }
        leg.eventLoop.execute { call(leg.value) }
    }

    func legClosed(_ side: WebSocketLegHandler.Side) {
        close(code: side == .client ? .goingAway : .unexpectedServerError, reason: side == .client ? "client disconnected" : "upstream disconnected",
              unfinished: side == .client ? .clientDisconnected : .upstreamError)
    }

    func legFailed(_ side: WebSocketLegHandler.Side, _ error: any Error) {
        if side == .client, let tooLarge = error as? WebSocketMessageReader.MessageTooLarge {
            runtime.metrics.recordRefusal(.webSocketMessageTooLarge)
            logger.warning("WebSocket client sent a \(tooLarge); closing the session")
            return close(code: .messageTooLarge, reason: "message too large", unfinished: .clientDisconnected)
        }
        logger.debug("WebSocket \(side == .client ? "client" : "upstream") error: \(error)")
        close(code: side == .client ? .protocolError : .unexpectedServerError, reason: "\(side == .client ? "client" : "upstream") error",
              unfinished: side == .client ? .clientDisconnected : .upstreamError)
    }
}
