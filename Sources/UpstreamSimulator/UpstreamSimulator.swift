import Foundation
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOWebSocket
import Synchronization

/// A simulated Codex backend on loopback: `/backend-api/codex/responses` over SSE and WebSocket,
/// `/backend-api/wham/usage`, `/oauth/token`, with per-account limits, 429s and a request log.
/// The tests, the benchmarks and `codexpool demo` point codexpool's `upstream:` at it.
public final class UpstreamSimulator: Sendable {
    public let port: Int
    private let channel: any Channel
    let state: Mutex<SimulatorState>
    /// What runs when an account asks for a tool call (`whenToolCalled`).
    let toolCallAction = Mutex<(@Sendable (String, String?) -> Void)?>(nil)

    /// The Responses API base (`upstream.base_url`).
    public var baseURL: String { "http://127.0.0.1:\(port)/backend-api/codex" }
    /// The usage API (`upstream.usage_url`).
    public var usageURL: String { "http://127.0.0.1:\(port)/backend-api/wham/usage" }
    /// The OAuth token endpoint (`upstream.token_url`).
    public var tokenURL: String { "http://127.0.0.1:\(port)/oauth/token" }

    private init(channel: any Channel, port: Int, state: SimulatorState) {
        self.channel = channel
        self.port = port
        self.state = Mutex(state)
    }

    /// Starts the simulator on `host:port` (0: any free port).
    public static func start(accounts: [SimulatedAccount], host: String = "127.0.0.1", port: Int = 0,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> UpstreamSimulator {
        let box = SimulatorBox()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, box: box)
                }
            }
            .bind(host: host, port: port).get()
        let simulator = UpstreamSimulator(channel: channel, port: channel.localAddress?.port ?? port, state: SimulatorState(accounts: accounts))
        box.simulator.withLock { $0 = simulator }
        return simulator
    }

    private static func configure(_ channel: any Channel, box: SimulatorBox) throws {
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 24,
            shouldUpgrade: { channel, head in
                guard let simulator = box.current else { return channel.eventLoop.makeSucceededFuture(nil) }
                guard let (headers, delay) = simulator.upgradeHeaders(for: head) else { return channel.eventLoop.makeSucceededFuture(nil) }
                guard delay > 0 else { return channel.eventLoop.makeSucceededFuture(headers) }
                return channel.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) { headers }.futureResult
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    guard let simulator = box.current else { throw ChannelError.ioOnClosedChannel }
                    let accountID = simulator.state.withLock { $0.accountID(bearer: head.headers.first(name: "authorization")) }
                    try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: 1 << 26))
                    try channel.pipeline.syncOperations.addHandler(
                        SimulatorWebSocketHandler(simulator: simulator, accountID: accountID ?? "", head: head))
                }
            })
        // After an upgrade the HTTP handler must leave, or WebSocket bytes would reach it.
        let upgraded: @Sendable (ChannelHandlerContext) -> Void = { context in
            if let handler = try? context.pipeline.syncOperations.handler(type: SimulatorHTTPHandler.self) {
                context.pipeline.syncOperations.removeHandler(handler, promise: nil)
            }
        }
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: upgraded))
        guard let simulator = box.current else { throw ChannelError.ioOnClosedChannel }
        try channel.pipeline.syncOperations.addHandler(SimulatorHTTPHandler(simulator: simulator))
        simulator.connectionOpened(channel)
    }

    /// Stops listening and closes every open connection.
    public func shutdown() async {
        try? await channel.close()
        let open = state.withLock { $0.openChannels.values }
        for channel in open { try? await channel.close() }
    }

    // MARK: Inspection and control

    /// Every request received so far, oldest first.
    public var requests: [SimulatedRequest] { state.withLock { $0.log } }

    /// Model catalog requests answered so far (a cache in front of it asks less).
    public var catalogRequests: Int { state.withLock { $0.catalogRequests } }

    /// Model requests (`/responses`, HTTP or WebSocket message), oldest first.
    public var modelRequests: [SimulatedRequest] { requests.filter { $0.path.hasSuffix("/responses") && $0.method != "UPGRADE" } }

    public func account(_ accountID: String) -> SimulatedAccount? { state.withLock { $0.accounts[accountID] } }

    public func updateAccount(_ accountID: String, _ change: (inout SimulatedAccount) -> Void) {
        state.withLock { state in
            if var account = state.accounts[accountID] {
                change(&account)
                state.accounts[accountID] = account
            }
        }
    }

    /// The next request that arrives on a connection which already served one is not answered:
    /// the connection closes instead, as when a server drops a keep-alive connection just as the
    /// client reuses it.
    public func closeNextReusedConnection() {
        mutate { $0.closesNextReusedConnection = true }
    }

    /// From now on, model requests that do not look like a real Codex CLI's (`CodexRequestShape`)
    /// are refused with 400, so an end-to-end test notices a proxy that mangles them.
    public func checkCodexRequests() {
        mutate { $0.checksCodexRequests = true }
    }

    /// Why `body` would be refused as a Codex request, when checking is on.
    func codexRequestProblem(_ body: [String: Any]) -> String? {
        guard state.withLock({ $0.checksCodexRequests }) else { return nil }
        if case .failure(let problem) = CodexRequestShape.classify(body) { return "not a Codex request: \(problem)" }
        return nil
    }

    /// The counters `waitUntil` conditions read, as they are now.
    public var snapshot: SimulatorSnapshot { state.withLock { $0.snapshot } }

    /// Connections currently open to the simulator.
    public var openConnectionCount: Int { state.withLock { $0.openChannels.count } }

    /// Waits until `condition` holds for the simulator's state; re-checked on every change.
    /// - Throws: `SimulatorWaitTimeout` when it does not hold within `timeout`, so a test that
    ///   waits for something that never happens fails instead of hanging.
    public func waitUntil(within timeout: Duration = .seconds(20), _ condition: @escaping @Sendable (SimulatorSnapshot) -> Bool) async throws {
        let id = UUID()
        let held = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let satisfied = state.withLock { state -> Bool in
                if condition(state.snapshot) { return true }
                state.waiters.append((id, condition, continuation))
                return false
            }
            if satisfied { return continuation.resume(returning: true) }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.state.withLock { state in
                    state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0).continuation }
                }
                expired?.resume(returning: false)
            }
        }
        guard held else { throw SimulatorWaitTimeout(timeout: timeout) }
    }

    /// From now on every answer (SSE or WebSocket) sends its first event and then waits for
    /// `releaseAnswers()`: a test's way to have a turn under way for as long as it needs.
    public func holdAnswers() {
        mutate { $0.answersHeld = true }
    }

    /// Lets held answers finish, and new ones run straight through again.
    public func releaseAnswers() {
        let held = mutate { state in
            state.answersHeld = false
            defer { state.heldAnswers.removeAll() }
            return state.heldAnswers
        }
        for resume in held { resume() }
    }

    // MARK: Internals used by the handlers

    /// When answers are held: keeps `resume` for `releaseAnswers()` and returns true.
    func holdIfAsked(_ resume: @escaping @Sendable () -> Void) -> Bool {
        mutate { state in
            guard state.answersHeld else { return false }
            state.heldAnswers.append(resume)
            return true
        }
    }

    func mutate<Result>(_ body: (inout SimulatorState) -> Result) -> Result {
        let (result, ready) = state.withLock { state -> (Result, [CheckedContinuation<Bool, Never>]) in
            let result = body(&state)
            return (result, state.takeSatisfiedWaiters())
        }
        for waiter in ready { waiter.resume(returning: true) }
        return result
    }

    func connectionOpened(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        mutate { $0.openChannels[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            mutate { state in
                state.openChannels[id] = nil
                state.closedConnections += 1
            }
        }
    }

    /// Headers for the 101 and how long to wait before it, or nil to refuse (the HTTP handler then
    /// answers — and logs — the request). An accepted upgrade is logged here, like a refused one,
    /// as an `UPGRADE` request.
    func upgradeHeaders(for head: HTTPRequestHead) -> (HTTPHeaders, delayMilliseconds: Int)? {
        guard head.uri.hasPrefix("/backend-api/codex/responses") else { return nil }
        return mutate { state -> (HTTPHeaders, delayMilliseconds: Int)? in
            guard let id = state.accountID(bearer: head.headers.first(name: "authorization")), let account = state.accounts[id] else { return nil }
            switch account.behavior {
            case .rateLimited, .failing, .unauthorized: return nil
            case .normal, .dropMidStream, .stallMidStream, .failMidAnswer: break
            }
            var headers = account.rateLimits.headers(now: Self.unixNow)
            headers.add(name: "x-request-id", value: UUID().uuidString)
            headers.add(name: "openai-model", value: "gpt-5.5")
            state.log.append(SimulatedRequest(
                transport: .http, method: "UPGRADE", path: String(head.uri.split(separator: "?", maxSplits: 1).first ?? ""), accountID: id,
                headers: head.headers.map { ($0.name.lowercased(), $0.value) }, body: Data(), isWarmUp: false))
            return (headers, account.answerDelayMilliseconds)
        }
    }

    static var unixNow: Int { Int(Date().timeIntervalSince1970) }

    /// How an answer's events travel: SSE chunks (`event:` and `data:` lines) or WebSocket messages (the JSON alone).
    enum EventFraming: String {
        case serverSentEvents, webSocket
    }

    /// The events of one answer, framed. Rendering JSON is the simulator's main cost, so answers
    /// are rendered once per account, model and second and only the response id is filled in; an
    /// empty chunk marks where a cut answer stops.
    func renderedEvents(for turn: SimulatedTurn, cut: Bool, framing: EventFraming) -> [ByteBuffer] {
        let placeholder = "resp_simPLACEHOLDER"
        // Everything the events are made of, but the id (and the reply, compared below).
        let account = turn.account
        let key = "\(account.accountID)|\(account.behavior)|\(account.deltaCount)|\(account.inputTokens)|\(account.outputTokens)|\(account.cachedTokens)"
            + "|\(turn.model)|\(turn.isWarmUp)|\(turn.createdAt)|\(cut)|\(framing)|\(account.reasons)|\(turn.callsTool ?? "")|\(turn.functionCall.map { "\($0.name)(\($0.arguments))" } ?? "")"
        let template: [[String]] = state.withLock { state in
            if let cached = state.renderedTurns[key], cached.reply == turn.account.reply { return cached.chunks }
            var template = turn
            template.responseID = placeholder
            var chunks: [[String]] = []
            for (index, event) in template.events().enumerated() {
                if cut, index == 3 {
                    chunks.append([""])
                    break
                }
                // Split around the placeholder now, so filling in an id is a plain join.
                let json = SimulatorJSON.string(event)
                let text = framing == .webSocket ? json : "event: \(event["type"] as? String ?? "message")\ndata: \(json)\n\n"
                chunks.append(text.components(separatedBy: "simPLACEHOLDER"))
            }
            if state.renderedTurns.count > 64 { state.renderedTurns.removeAll() }
            state.renderedTurns[key] = (turn.account.reply, chunks)
            return chunks
        }
        // Response and message ids both end in the placeholder: `resp_simN`, `msg_simN`.
        let suffix = String(turn.responseID.dropFirst(5))
        return template.map { ByteBuffer(string: $0.joined(separator: suffix)) }
    }
}

/// Lets channel initializers reach the simulator, which exists only after the bind.
private final class SimulatorBox: Sendable {
    let simulator = Mutex<UpstreamSimulator?>(nil)
    var current: UpstreamSimulator? { simulator.withLock { $0 } }
}

/// What tests can wait on.
/// `UpstreamSimulator.waitUntil` gave up.
public struct SimulatorWaitTimeout: Error, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "the simulator did not reach the awaited state within \(timeout)" }
}

public struct SimulatorSnapshot: Sendable {
    public var requestCount: Int
    public var openConnections: Int
    public var closedConnections: Int
    /// Streams the simulator started and saw cut by the other side before it finished.
    public var abandonedStreams: Int
    public var completedResponses: Int
    /// Pongs received over WebSocket (answers to the pings of `batchesWebSocketFrames`).
    public var webSocketPongs: Int
    /// Model requests over HTTP and WebSocket upgrades (accepted or refused) received.
    public var modelAttempts: Int
    /// Answers waiting after their first event for `releaseAnswers()`.
    public var heldAnswers: Int
}

struct SimulatorState {
    var accounts: [String: SimulatedAccount] = [:]
    var log: [SimulatedRequest] = []
    var openChannels: [ObjectIdentifier: any Channel] = [:]
    var closedConnections = 0
    var abandonedStreams = 0
    var completedResponses = 0
    var webSocketPongs = 0
    var responseCounter = 0
    var closesNextReusedConnection = false
    var checksCodexRequests = false
    var renderedTurns: [String: (reply: String, chunks: [[String]])] = [:]
    /// Which account issued each turn-state token and response id.
    var turnStateOwners: [String: String] = [:]
    var responseOwners: [String: String] = [:]
    var refusedContinuations = 0
    var signIn = SimulatedSignIn()
    /// `GET …/codex/models` requests answered (200 or 304).
    var catalogRequests = 0
    /// While true, an answer stops after its first event until released.
    var answersHeld = false
    var heldAnswers: [@Sendable () -> Void] = []
    var waiters: [(id: UUID, condition: @Sendable (SimulatorSnapshot) -> Bool, continuation: CheckedContinuation<Bool, Never>)] = []

    init(accounts: [SimulatedAccount]) {
        for account in accounts { self.accounts[account.accountID] = account }
    }

    var snapshot: SimulatorSnapshot {
        SimulatorSnapshot(requestCount: log.count, openConnections: openChannels.count, closedConnections: closedConnections,
                          abandonedStreams: abandonedStreams, completedResponses: completedResponses, webSocketPongs: webSocketPongs,
                          modelAttempts: log.count { $0.path.hasSuffix("/responses") && ($0.method == "POST" || $0.method == "UPGRADE") },
                          heldAnswers: heldAnswers.count)
    }

    mutating func takeSatisfiedWaiters() -> [CheckedContinuation<Bool, Never>] {
        guard !waiters.isEmpty else { return [] }
        let current = snapshot
        var ready: [CheckedContinuation<Bool, Never>] = []
        waiters.removeAll { waiter in
            guard waiter.condition(current) else { return false }
            ready.append(waiter.continuation)
            return true
        }
        return ready
    }

    /// The account a `Bearer` header belongs to.
    func accountID(bearer: String?) -> String? {
        guard let bearer, bearer.hasPrefix("Bearer ") else { return nil }
        let token = String(bearer.dropFirst(7))
        return accounts.values.first { $0.accessTokens.contains(token) }?.accountID
    }

    mutating func nextResponseID() -> String {
        responseCounter += 1
        return "resp_sim\(responseCounter)"
    }
}
