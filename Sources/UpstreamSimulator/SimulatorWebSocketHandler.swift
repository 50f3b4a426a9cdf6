import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One simulated Responses WebSocket: for every `response.create`, a `codex.rate_limits`
/// event, then the answer (or a 429 `error` event when the account is used up).
/// `previous_response_id` must name a response of this same connection, as upstream demands.
final class SimulatorWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let simulator: UpstreamSimulator
    private let accountID: String
    private let headers: [(name: String, value: String)]
    private var responseIDs: Set<String> = []
    /// Answers completed on this socket (for `answersPerWebSocket`).
    private var answers = 0
    private var closing = false

    init(simulator: UpstreamSimulator, accountID: String, head: HTTPRequestHead) {
        self.simulator = simulator
        self.accountID = accountID
        headers = head.headers.map { ($0.name.lowercased(), $0.value) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            handleMessage(context: context, Data(frame.unmaskedData.readableBytesView))
        case .ping:
            send(context: context, WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
        case .pong:
            simulator.mutate { $0.webSocketPongs += 1 }
        case .connectionClose:
            guard !closing else { return context.close(promise: nil) }
            closing = true
            var code = context.channel.allocator.buffer(capacity: 2)
            code.write(webSocketErrorCode: .normalClosure)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))).whenComplete { _ in
                channel.close(promise: nil)
            }
        default:
            break
        }
    }

    private func handleMessage(context: ChannelHandlerContext, _ data: Data) {
        let request = SimulatorJSON.object(data) ?? [:]
        let isWarmUp = (request["generate"] as? Bool) == false
        simulator.mutate { state in
            state.log.append(SimulatedRequest(transport: .webSocket, method: "MESSAGE", path: "/backend-api/codex/responses",
                                              accountID: accountID, headers: headers, body: data, isWarmUp: isWarmUp))
        }
        guard request["type"] as? String == "response.create", let account = simulator.account(accountID) else {
            return sendJSON(context: context, ["type": "error", "status_code": 400,
                                               "error": ["type": "invalid_request_error", "message": "expected response.create"]])
        }
        if let problem = simulator.codexRequestProblem(request) {
            return sendJSON(context: context, ["type": "error", "status_code": 400, "error": ["type": "invalid_request_error", "message": problem]])
        }
        if let cap = account.answersPerWebSocket, answers >= cap {
            // The backend's per-socket cap: a wrapped error, then the socket ends.
            sendJSON(context: context, ["type": "error", "status_code": 400, "error": [
                "type": "invalid_request_error", "code": "websocket_connection_limit_reached",
                "message": "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue."]])
            return closeAfterCap(context: context)
        }
        if let refusal = simulator.continuationProblem(request, turnStateHeader: nil, accountID: accountID, checksPreviousResponse: false) {
            return sendJSON(context: context, ["type": "error", "status_code": 400, "error": refusal])
        }
        if let previous = request["previous_response_id"] as? String, !responseIDs.contains(previous) {
            return sendJSON(context: context, ["type": "error", "status_code": 400,
                                               "error": ["type": "invalid_request_error", "code": "previous_response_not_found",
                                                         "message": "Previous response with id '\(previous)' not found."]])
        }
        let now = UpstreamSimulator.unixNow
        sendJSON(context: context, SimulatedTurn.rateLimitsEvent(account.rateLimits, now: now))
        if account.rateLimits.limitReached {
            var headerObject: [String: String] = [:]
            for (name, value) in account.rateLimits.headers(now: now) { headerObject[name] = value }
            return sendJSON(context: context, ["type": "error", "status_code": 429,
                                               "error": SimulatedTurn.usageLimitError(account.rateLimits, now: now), "headers": headerObject])
        }
        let responseID = simulator.mutate { $0.nextResponseID() }
        simulator.recordResponse(responseID, of: accountID)
        if !isWarmUp {
            // The turn's state token, in the frame the backend now uses for it (not the 101).
            let turnState = simulator.turnState(for: request, turnStateHeader: nil, accountID: accountID)
            sendJSON(context: context, ["type": "response.metadata", "headers": ["x-codex-turn-state": turnState]])
        }
        let turn = SimulatedTurn(responseID: responseID, model: request["model"] as? String ?? "gpt-5.5", account: account,
                                 isWarmUp: isWarmUp, createdAt: now,
                                 callsTool: simulator.toolCall(for: request, account: account, sessionID: headers.first { $0.name == "session-id" }?.value))
        let cut = !isWarmUp && (account.behavior == .dropMidStream || account.behavior == .stallMidStream)
        let messages = simulator.renderedEvents(for: turn, cut: cut, framing: .webSocket)
        if account.batchesWebSocketFrames, !cut, !messages.contains(where: { $0.readableBytes == 0 }) {
            return sendBatched(messages, context: context, turn: turn)
        }
        sendMessages(messages[...], context: context, interval: .milliseconds(Int64(account.eventIntervalMilliseconds)), turn: turn)
    }

    /// Sends one message, then the rest after `interval` (at once when zero); an empty message
    /// is where a cut answer stops.
    private func sendMessages(_ messages: ArraySlice<ByteBuffer>, context: ChannelHandlerContext, interval: TimeAmount, turn: SimulatedTurn) {
        var remaining = messages
        while let message = remaining.popFirst() {
            guard context.channel.isActive else { return }
            if message.readableBytes == 0 {
                if turn.account.behavior == .dropMidStream {
                    simulator.mutate { $0.abandonedStreams += 1 }
                    context.close(promise: nil)
                }
                return
            }
            send(context: context, WebSocketFrame(fin: true, opcode: .text, data: message))
            if !remaining.isEmpty {
                let later = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let rest = remaining
                let eventLoop = context.eventLoop
                if simulator.holdIfAsked({ eventLoop.execute { later.value.0.sendMessages(rest, context: later.value.1, interval: interval, turn: turn) } }) {
                    return
                }
            }
            if interval > .zero, !remaining.isEmpty {
                let later = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let rest = remaining
                context.eventLoop.scheduleTask(in: interval) {
                    let (handler, context) = later.value
                    handler.sendMessages(rest, context: context, interval: interval, turn: turn)
                }
                return
            }
        }
        finished(turn)
    }

    /// The whole answer in one write (`SimulatedAccount.batchesWebSocketFrames`).
    private func sendBatched(_ messages: [ByteBuffer], context: ChannelHandlerContext, turn: SimulatedTurn) {
        for (index, message) in messages.enumerated() {
            if index == 1, message.readableBytes > 1 {
                var first = message
                let head = first.readSlice(length: message.readableBytes / 2)!
                context.write(wrapOutboundOut(WebSocketFrame(fin: false, opcode: .text, data: head)), promise: nil)
                context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .continuation, data: first)), promise: nil)
            } else {
                context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: message)), promise: nil)
            }
            if index == 0 { context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "batch"))), promise: nil) }
        }
        context.flush()
        finished(turn)
    }

    private func finished(_ turn: SimulatedTurn) {
        responseIDs.insert(turn.responseID)
        answers += 1
        simulator.mutate { state in
            state.completedResponses += 1
            if !turn.isWarmUp { state.accounts[accountID]?.rateLimits.addUse(turn.account.percentPerTurn) }
        }
    }

    private func closeAfterCap(context: ChannelHandlerContext) {
        closing = true
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .normalClosure)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)), promise: nil)
    }

    private func sendJSON(context: ChannelHandlerContext, _ object: [String: Any]) {
        send(context: context, WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: SimulatorJSON.data(object))))
    }

    private func send(context: ChannelHandlerContext, _ frame: WebSocketFrame) {
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }
}
