public import Configuration
public import Foundation
public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import OpenSSLTLS
public import PoolCore
public import Storage
import Synchronization
public import UpstreamHTTP
public import Yamux

/// Everything the gateway's connections share: the pool, the credentials' token sources, the
/// users, usage statistics, interruptions and status notifications. Thread-safe; the
/// protocol handlers call into it from their event loops.
public final class GatewayRuntime: Sendable {
    public let logger: Logger
    /// The OpenAI endpoints; fixed for the process's life (a reload keeps them).
    let upstreamEndpoints: UpstreamEndpoints
    public let statusSignal = StatusChangeSignal()
    public let metrics = GatewayMetrics()
    public let upstream: UpstreamClient
    public let eventLoopGroup: any EventLoopGroup
    let clock: any PoolClock
    let interrupts = InterruptRegistry()
    let authenticationThrottle: AuthenticationThrottle
    let reverseTunnels: ReverseTunnels
    let tunnelHealthBoard = TunnelHealthBoard()
    let pool: Mutex<CredentialPool>
    /// The configuration in force and what was built from it; a reload replaces both at once.
    let generation: Mutex<Generation>
    let rosterContext: CredentialRoster.Context
    /// Serves `POST /api/v1/reload`; set by whoever knows where the configuration comes from.
    let reloader = Mutex<(@Sendable () async -> ReloadOutcome)?>(nil)
    let upstreamTLSContext: OpenSSLContext?
    /// Yamux settings of reverse tunnels (both roles): the reference's unless a test shortens them.
    public let tunnelSettings: YamuxConfiguration
    let pollState = Mutex<(inFlight: Set<String>, lastReload: [String: Date])>(([], [:]))
    /// Usage records on their way to the recorders.
    let usageWrites = PendingWork()
    /// The request log, metric history and admin state; nil when storage is off or unusable.
    let history: RequestHistory?
    /// Finished requests as they happen (the admin API's live stream).
    let requestFeed = RequestFeed()
    /// Each user's use and open sessions, for `users[].limits`.
    let userLimits = UserLimitBook()
    /// The backend's model catalogs, for `GET /v1/models`.
    let modelCatalog = ModelCatalog()
    /// Image requests under way per account (`image_concurrency`).
    let imageSlots: ImageSlots
    /// The last rate-limit snapshot of each credential's answers and the headers it came from.
    let snapshotMemo = RateLimitSnapshotMemo()

    public init(configuration: CodexpoolConfiguration, logger: Logger, clock: any PoolClock = SystemClock(),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                upstream: UpstreamClient = UpstreamClient(), upstreamTLS: OpenSSLContext? = nil,
                fileStore: any CredentialFileStore = FileSystemCredentialStore(), tunnelSettings: YamuxConfiguration = YamuxConfiguration(),
                idleTunnelStreams: Int? = nil,
                imagePatience: TimeAmount = .seconds(10)) throws(GatewayStartupError) {
        imageSlots = ImageSlots(patience: imagePatience)
        self.logger = logger
        upstreamEndpoints = configuration.upstream
        authenticationThrottle = AuthenticationThrottle(failuresPerMinute: configuration.limits.failedAuthenticationsPerMinute)
        self.clock = clock
        self.upstream = upstream
        self.eventLoopGroup = eventLoopGroup
        upstreamTLSContext = upstreamTLS
        var tunnelSettings = tunnelSettings
        tunnelSettings.maximumInboundStreams = configuration.limits.maxTunnelStreams
        self.tunnelSettings = tunnelSettings
        let tokenTarget = configuration.upstream.tokenURL
        rosterContext = CredentialRoster.Context(
            fileStore: fileStore, refresher: HTTPTokenRefresher(client: upstream, group: eventLoopGroup, url: tokenTarget, target: tokenTarget.target(tls: upstreamTLS)),
            clock: clock, upstreamTLS: upstreamTLS, logger: logger)
        let roster = try CredentialRoster(configuration, reusing: nil, context: rosterContext)
        reverseTunnels = ReverseTunnels(tokens: roster.reverseTokens, streamReadTimeout: upstream.timeouts.read,
                                        maximumIdleStreams: idleTunnelStreams ?? ReverseTunnels.defaultMaximumIdleStreams)
        pool = Mutex(CredentialPool(credentials: roster.states, balancers: roster.balancers))
        generation = Mutex(Generation(configuration: configuration, roster: roster))
        history = RequestHistory.open(configuration.storage, clock: clock, metrics: metrics, logger: logger)
    }

    struct Generation: Sendable {
        var configuration: CodexpoolConfiguration
        var roster: CredentialRoster
        var authenticator: UserAuthenticator
        /// `users[].limits` by user name.
        var userLimits: [String: UserLimits]
        /// Backends of credentials a reload removed, for work that had picked them already.
        var retired: [String: CredentialBackend] = [:]

        init(configuration: CodexpoolConfiguration, roster: CredentialRoster) {
            self.configuration = configuration
            self.roster = roster
            let defaultProvider = roster.balancers.first?.tag ?? configuration.credentials.first?.tag ?? "default"
            authenticator = UserAuthenticator(users: configuration.users, defaultProvider: defaultProvider)
            userLimits = Dictionary(configuration.users.map { ($0.name, $0.limits) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// The configuration in force (a reload may have replaced the one the runtime started with).
    /// A copy of the whole: per-request paths read the one field they need instead.
    public var configuration: CodexpoolConfiguration { generation.withLock { $0.configuration } }
    /// The extra upstream headers in force (`headers:`; a reload may change them).
    var upstreamHeaders: [UpstreamHeader] { generation.withLock { $0.configuration.upstreamHeaders } }
    var recorders: [String: UsageRecorder] { generation.withLock { $0.roster.recorders } }
    /// The status streams of external credentials that are not in connector mode (§5.5).
    var peerWatchers: [String: PeerStatusWatcher] { generation.withLock { $0.roster.peerWatchers } }
    var authenticator: UserAuthenticator { generation.withLock { $0.authenticator } }

    /// How `tag` reaches upstream; a credential removed by a reload still answers for work already on it.
    func backend(_ tag: String) -> CredentialBackend? {
        generation.withLock { $0.roster.backends[tag] ?? $0.retired[tag] }
    }

    // MARK: Start and stop

    /// Loads credential files and usage statistics, and starts a first usage poll.
    public func start() async {
        await restoreAdminState()
        await restoreUserLedger()
        let metrics = metrics
        history?.start(on: eventLoopGroup.next()) { (Double(metrics.levels.inFlight), Double(metrics.levels.webSockets)) }
        await bringUp(generation.withLock { $0.roster }, after: nil)
    }

    /// The first half of a drain, while requests still finish: status streams end, peer watchers
    /// stop, and tunnels stop taking new streams (GoAway) while theirs in flight complete.
    public func beginDrain() {
        statusSignal.finishAll()
        for watcher in peerWatchers.values { watcher.stop() }
        reverseTunnels.drainAll()
    }

    /// The second half, after `beginDrain` and once connections are done: usage recorded by the
    /// last answers is saved, then upstream connections close. (Upstream stays usable during the
    /// drain, so a failover or a token refresh of a finishing request still works.)
    public func shutdown() async {
        await usageWrites.waitForAll()
        for recorder in recorders.values { await recorder.flush() }
        history?.stop()
        upstream.shutdown()
    }

    // MARK: Pool access

    func withPool<Result>(_ body: (inout CredentialPool) -> Result) -> Result {
        pool.withLock { body(&$0) }
    }

    /// Carries out what a pool change requires.
    func apply(_ events: PoolEvents) {
        for interruption in events.interruptions {
            let count = interrupts.fire(interruption)
            if case .credential(let tag) = interruption, count > 0 { logger.warning("interrupted \(count) connection(s) on \(tag): it became unavailable") }
        }
        if events.statusChanged { statusSignal.notify() }
    }

    public var now: Date { clock.now() }

    /// The reverse sessions of receiver and connector credentials, by tag.
    public var tunnelHealth: [String: TunnelHealth] { tunnelHealthBoard.all }

    func recordRoundTrip(_ tag: String, _ rtt: TimeAmount) {
        tunnelHealthBoard.roundTrip(tag, rtt)
        logger.debug("reverse connection for \(tag): ping round trip \(Double(rtt.nanoseconds) / 1e6) ms")
    }

    /// A snapshot of every credential, for status output and tests.
    public var credentialStates: [CredentialState] {
        pool.withLock { pool in pool.order.compactMap { pool[$0] } }
    }

    public func aggregate(for user: AuthenticatedUser) -> AggregateStatus {
        let now = clock.now()
        return pool.withLock { $0.aggregateStatus(provider: user.provider, viewer: user.viewer, now: now) }
    }

    /// The user's pool view of each other limit family its accounts report.
    func additionalLimits(for user: AuthenticatedUser) -> [AdditionalRateLimit] {
        pool.withLock { $0.additionalLimits(provider: user.provider, viewer: user.viewer) }
    }

    /// `GET /metrics`.
    func metricsExposition() -> [UInt8] {
        let now = clock.now()
        let (states, sessions) = pool.withLock { pool in (pool.order.compactMap { pool[$0] }, pool.sessionCounts(now: now)) }
        return metrics.exposition(credentials: states, sessions: sessions, tunnels: tunnelHealth, now: now)
    }

    /// The ChatGPT-mode endpoints a Codex CLI signed in to the pool asks for (codex-wire-2026.md §6).
    func chatGPTAnswer(_ route: GatewayRoute.ChatGPTRoute, for user: AuthenticatedUser) -> JSONValue {
        let now = clock.now()
        let (aggregate, planType) = pool.withLock { pool in
            let members = pool.members(of: user.provider).compactMap { pool[$0] }
            // The richest plan behind the user names the pool's plan.
            let best = members.max { $0.planWeight < $1.planWeight }
            return (pool.aggregateStatus(provider: user.provider, viewer: user.viewer, now: now), best?.usage.planType ?? "plus")
        }
        let accountID = PoolUsageAnswer.accountID(for: user.name)
        switch route {
        case .usage:
            return PoolUsageAnswer.json(aggregate, additional: additionalLimits(for: user), planType: planType, accountID: accountID,
                                        userName: user.name, now: now)
        case .accountsCheck: return PoolUsageAnswer.accountsCheck(accountID: accountID, planType: planType)
        case .resetCredits: return PoolUsageAnswer.resetCredits
        }
    }

    func operatorStatus(for user: AuthenticatedUser) -> OperatorStatus {
        let now = clock.now()
        let (aggregate, credentials, sessions) = pool.withLock { pool in
            (pool.aggregateStatus(provider: user.provider, viewer: user.viewer, now: now), pool.members(of: user.provider).compactMap { pool[$0] },
             pool.sessionCounts(now: now))
        }
        return OperatorStatus(aggregate: aggregate, credentials: credentials, sessions: sessions, tunnels: tunnelHealth.mapValues(\.operatorView), now: now)
    }

    /// Picks the credential for a request or WebSocket session.
    func select(for user: AuthenticatedUser, sessionID: String?, excluding: Set<String> = []) -> Result<Selection, SelectionFailure> {
        let now = clock.now()
        let result = pool.withLock { $0.select(provider: user.provider, scope: user.scope, sessionID: sessionID, now: now, excluding: excluding) }
        if case .success(let selection) = result { apply(selection.events) }
        return result
    }

    /// A 429 from `failedTag`: marks it and picks the next credential for the session.
    /// - Parameter logger: the request's, so the line carries its id.
    func failover(for user: AuthenticatedUser, sessionID: String?, failedTag: String, rejection: RateLimitRejection,
                  logger: Logger? = nil, excluding: Set<String> = []) -> Result<Selection, SelectionFailure> {
        let logger = logger ?? self.logger
        let now = clock.now()
        let until = rejection.limitedUntil(now: now)
        logger.warning("rate limited for \(failedTag), reset in \(DurationText.interval(until.timeIntervalSince(now)))")
        let (events, next) = pool.withLock {
            $0.failover(provider: user.provider, scope: user.scope, sessionID: sessionID, failedTag: failedTag, rejection: rejection, now: now,
                        excluding: excluding)
        }
        apply(events)
        if case .success = next { metrics.recordFailover(from: failedTag) }
        return next
    }

    /// What a selection failure says now, for errors after a failed retry or an interruption.
    func currentFailure(for user: AuthenticatedUser) -> SelectionFailure? {
        let now = clock.now()
        return pool.withLock { $0.unavailability(provider: user.provider, scope: user.scope, now: now) }
    }

    /// Rate-limit headers (or an equivalent snapshot) seen on a response for `tag`.
    func observe(_ snapshot: RateLimitSnapshot, tag: String) {
        let now = clock.now()
        guard snapshot.hasUsageData || snapshot.peerPlanWeight != nil || snapshot.planType != nil || !snapshot.additional.isEmpty else { return }
        let events = pool.withLock { $0.recordObserved(tag, snapshot: snapshot, now: now) }
        apply(events)
    }

    func recordRateLimited(_ tag: String, rejection: RateLimitRejection) {
        let now = clock.now()
        let events = pool.withLock { $0.recordRateLimited(tag, rejection: rejection, now: now) }
        apply(events)
    }

    /// An external credential's peer answered 400 (§5.6).
    func recordUpstreamRejected(_ tag: String, logger: Logger? = nil) {
        let logger = logger ?? self.logger
        let now = clock.now()
        logger.warning("upstream rejected credential \(tag), marking unavailable for \(DurationText.interval(PoolPolicy.upstreamRejectionPause))")
        apply(pool.withLock { $0.upstreamRejected(tag, now: now) })
    }

    func isExternal(_ tag: String) -> Bool {
        pool.withLock { $0[tag]?.isExternal ?? false }
    }

    func isAPIKey(_ tag: String) -> Bool {
        pool.withLock { $0[tag]?.isAPIKey ?? false }
    }

    /// The balancer tag interruptions of work for `user` are keyed by (§4.5), nil for a single credential.
    func interruptBalancer(for user: AuthenticatedUser) -> String? {
        pool.withLock { $0.isBalancer(user.provider) ? user.provider : nil }
    }

    /// Authenticates a client, logging a refusal with its address (never the token). An address
    /// with too many recent failures is refused before its token is even looked at.
    func authenticate(_ headers: HTTPHeaders, remoteAddress: SocketAddress?, logger: Logger? = nil) -> Result<AuthenticatedUser, UserAuthenticator.Failure> {
        let logger = logger ?? self.logger
        let now = clock.now()
        if authenticationThrottle.mayRefuse, let retryAfter = authenticationThrottle.retryAfter(remoteAddress?.ipAddress ?? "unknown", now: now) {
            metrics.recordRefusal(.authenticationThrottled)
            logger.debug("request from \(remoteAddress?.ipAddress ?? "unknown") refused: too many failed authentications")
            return .failure(.throttled(retryAfter: retryAfter))
        }
        let result = authenticator.authenticate(headers)
        if case .failure(let failure) = result {
            let address = remoteAddress?.ipAddress ?? "unknown"
            authenticationThrottle.recordFailure(address, now: now)
            metrics.recordRefusal(.unauthenticated)
            logger.warning("authentication failed from \(address): \(failure.logMessage)")
        }
        return result
    }

    // MARK: Usage statistics

    /// - Parameter fallbackModel: the requested model, asked for only when the answer names none.
    func recordUsage(_ usage: CompletedUsage, tag: String, fallbackModel: @autoclosure () -> String?, user: AuthenticatedUser, weekStart: Date?) {
        metrics.recordTokens(usage, credential: tag, user: user.name)
        guard let recorder = generation.withLock({ $0.roster.recorders[tag] }), let model = usage.model ?? fallbackModel() else { return }
        let record = UsageRecord(model: model, serviceTier: usage.serviceTier, inputTokens: usage.inputTokens, cachedTokens: usage.cachedTokens,
                                 outputTokens: usage.outputTokens, user: user.name.isEmpty ? nil : user.name, weekStart: weekStart, time: clock.now())
        // Tracked, so that shutdown saves it even when the answer ended just before.
        usageWrites.run { await recorder.record(record) }
    }

    public func usageStatistics(_ tag: String) async -> UsageStatistics? {
        await recorders[tag]?.statistics
    }
}
