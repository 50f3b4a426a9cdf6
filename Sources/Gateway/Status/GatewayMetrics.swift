import Foundation
import NIOCore
import PoolCore
import Prometheus
import Synchronization

/// The Prometheus metrics of one gateway instance (`GET /metrics`). Event counters are updated
/// where things happen; the pool's and the tunnels' state is read when scraped. Each runtime has
/// its own registry, so several instances in one process (tests, `codexpool demo`) stay apart.
/// Labels carry credential tags, user names and routes — never tokens.
public final class GatewayMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    /// Tunnel disconnects already added to the counter, per tag (the board keeps the total).
    private let exportedDisconnects = Mutex<[String: Int]>([:])

    static let timeToFirstByteBuckets: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .seconds($0) }
    static let durationBuckets: [Duration] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800].map { .seconds($0) }

    private let requestsInFlight: Gauge
    private let webSocketSessionsOpen: Gauge
    private let historyWriteFailures: Counter
    /// The two gauges' values, for the history's samples (the registry does not read back).
    private let levelValues = Mutex<(inFlight: Int, webSockets: Int)>((0, 0))
    // The series touched by every request, found by their label values.
    private let httpResponses: SeriesCache<HTTPResponseSeries, Counter>
    private let responses: SeriesCache<ResponseSeries, Counter>
    /// By transport, made up front: two series, no look-up per request.
    private let timeToFirstByte: TransportSeries<DurationHistogram>
    private let responseDuration: TransportSeries<DurationHistogram>
    /// A credential and user's three token counters, found with one look-up.
    private let tokens: SeriesCache<TokenSeries, TokenCounters>

    public init() {
        let registry = registry
        requestsInFlight = registry.makeGauge(descriptor: Self.name("http_requests_in_flight", help: "Proxied HTTP requests being served now."))
        webSocketSessionsOpen = registry.makeGauge(descriptor: Self.name("websocket_sessions_open", help: "Responses WebSocket sessions open now."))
        historyWriteFailures = registry.makeCounter(descriptor: Self.name("history_write_failures", unit: "total",
                                                                          help: "Failed opens and writes of the history store (the requests were served)."))
        httpResponses = SeriesCache { key in
            registry.makeCounter(
                descriptor: GatewayMetrics.name("http_responses", unit: "total", help: "HTTP responses sent to clients, by route, status, credential and user."),
                labels: [("route", key.route), ("status", String(key.status)), ("credential", key.credential), ("user", key.user)]
            )
        }
        responses = SeriesCache { key in
            registry.makeCounter(
                descriptor: GatewayMetrics.name("responses", unit: "total", help: "Finished model requests (HTTP requests and WebSocket turns) by outcome."),
                labels: [("transport", key.transport.rawValue), ("outcome", key.outcome.rawValue), ("credential", key.credential), ("user", key.user)]
            )
        }
        timeToFirstByte = TransportSeries { transport in
            registry.makeDurationHistogram(
                descriptor: GatewayMetrics.name("time_to_first_byte", unit: "seconds", help: "From the request (or response.create) to the first byte of the answer."),
                labels: [("transport", transport.rawValue)], buckets: GatewayMetrics.timeToFirstByteBuckets
            )
        }
        responseDuration = TransportSeries { transport in
            registry.makeDurationHistogram(
                descriptor: GatewayMetrics.name("response_duration", unit: "seconds", help: "From the request (or response.create) to its end."),
                labels: [("transport", transport.rawValue)], buckets: GatewayMetrics.durationBuckets
            )
        }
        tokens = SeriesCache { key in
            let counter = { (kind: String) in
                registry.makeCounter(
                    descriptor: GatewayMetrics.name("tokens", unit: "total", help: "Tokens of completed responses by credential, user and kind (input includes cached input)."),
                    labels: [("credential", key.credential), ("user", key.user), ("kind", kind)]
                )
            }
            return TokenCounters(input: counter("input"), cachedInput: counter("cached_input"), output: counter("output"))
        }
    }

    private static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "codexpool", metricName: metric, unitName: unit, helpText: help)
    }

    // MARK: Events

    /// Every HTTP answer the gateway sends, proxied or its own (101 for WebSocket upgrades).
    func recordHTTPResponse(route: String, status: UInt, credential: String?, user: String?) {
        httpResponses(HTTPResponseSeries(route: route, status: status, credential: credential ?? "", user: user ?? "")).increment()
    }

    func proxiedRequestStarted() {
        requestsInFlight.increment()
        levelValues.withLock { $0.inFlight += 1 }
    }

    func proxiedRequestEnded() {
        requestsInFlight.decrement()
        levelValues.withLock { $0.inFlight -= 1 }
    }

    /// Proxied HTTP requests in flight and WebSocket sessions open, now.
    var levels: (inFlight: Int, webSockets: Int) { levelValues.withLock { $0 } }

    func webSocketOpened(credential: String, user: String) {
        webSocketSessionsOpen.increment()
        levelValues.withLock { $0.webSockets += 1 }
        registry.makeCounter(descriptor: Self.name("websocket_sessions", unit: "total", help: "Responses WebSocket sessions accepted, by credential and user."),
                             labels: [("credential", credential), ("user", user)])
            .increment()
    }

    func webSocketClosed() {
        webSocketSessionsOpen.decrement()
        levelValues.withLock { $0.webSockets -= 1 }
    }

    /// One finished model request: an HTTP `/v1/...` request or one `response.create` turn of a WebSocket session.
    func recordResponse(_ transport: ResponseTransport, outcome: ResponseOutcome, credential: String?, user: String,
                        timeToFirstByte: TimeAmount?, duration: TimeAmount) {
        responses(ResponseSeries(transport: transport, outcome: outcome, credential: credential ?? "", user: user)).increment()
        if let timeToFirstByte { self.timeToFirstByte[transport].record(.nanoseconds(timeToFirstByte.nanoseconds)) }
        responseDuration[transport].record(.nanoseconds(duration.nanoseconds))
    }

    /// The history store could not be opened or written (DESIGN.md: history unavailable, never a failed request).
    func recordHistoryWriteFailure() {
        historyWriteFailures.increment()
    }

    func recordTokens(_ usage: CompletedUsage, credential: String, user: String) {
        guard usage.inputTokens > 0 || usage.cachedTokens > 0 || usage.outputTokens > 0 else { return }
        let counters = tokens(TokenSeries(credential: credential, user: user))
        if usage.inputTokens > 0 { counters.input.increment(by: Int64(usage.inputTokens)) }
        if usage.cachedTokens > 0 { counters.cachedInput.increment(by: Int64(usage.cachedTokens)) }
        if usage.outputTokens > 0 { counters.output.increment(by: Int64(usage.outputTokens)) }
    }

    /// A 429 from upstream (HTTP status or WebSocket `error` event).
    func recordRateLimited(credential: String) {
        registry.makeCounter(descriptor: Self.name("upstream_rate_limited", unit: "total", help: "429 answers received from upstream, by credential."),
                             labels: [("credential", credential)])
            .increment()
    }

    /// A request moved from `credential` to another one after a 429.
    func recordFailover(from credential: String) {
        registry.makeCounter(descriptor: Self.name("failovers", unit: "total", help: "Requests retried on another credential after a 429, by the credential that refused."),
                             labels: [("credential", credential)])
            .increment()
    }

    private let refusedTunnelStreams = Mutex<[String: Int]>([:])

    /// A stream the peer of `credential`'s tunnel opened past the cap; returns the count so far.
    func recordTunnelStreamRefused(credential: String) -> Int {
        registry.makeCounter(descriptor: Self.name("tunnel_streams_refused", unit: "total",
                                                   help: "Streams a tunnel peer opened beyond the concurrent-stream cap (reset), by credential."),
                             labels: [("credential", credential)])
            .increment()
        return refusedTunnelStreams.withLock { counts in
            counts[credential, default: 0] += 1
            return counts[credential]!
        }
    }

    /// A request or connection the listener refused before any credential was involved.
    func recordRefusal(_ reason: RefusalReason) {
        registry.makeCounter(descriptor: Self.name("refusals", unit: "total",
                                                   help: "Requests and connections refused by the listener's guards, by reason."),
                             labels: [("reason", reason.rawValue)])
            .increment()
    }

    // MARK: Scrape

    /// The Prometheus text exposition of everything, with the state gauges read now.
    func exposition(credentials: [CredentialState], sessions: [String: Int], tunnels: [String: TunnelHealth], now: Date) -> [UInt8] {
        for state in credentials { updateCredentialGauges(state, sessions: sessions[state.tag] ?? 0, now: now) }
        for (tag, health) in tunnels { updateTunnelMetrics(tag, health) }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    private func updateCredentialGauges(_ state: CredentialState, sessions: Int, now: Date) {
        let tag = [("credential", state.tag)]
        registry.makeGauge(descriptor: Self.name("credential_sessions", help: "Live sticky sessions assigned to the credential."), labels: tag)
            .set(Double(sessions))
        registry.makeGauge(descriptor: Self.name("credential_usable", help: "1 when the credential can take new sessions now, else 0."), labels: tag)
            .set(Double(state.usability(now: now).isUsable ? 1 : 0))
        registry.makeGauge(descriptor: Self.name("credential_plan_weight", help: "The credential's plan weight (pro 10, plus 1, …)."), labels: tag)
            .set(state.planWeight)
        registry.makeGauge(descriptor: Self.name("credential_token_unsaved",
                                                 help: "1 while a refreshed token could not be written to the credential file (lost on restart), else 0."),
                           labels: tag)
            .set(Double(state.unsavedTokenSince == nil ? 0 : 1))
        guard state.usage.hasData else { return }
        for kind in [WindowKind.fiveHour, .weekly] {
            let labels = tag + [("window", kind.rawValue)]
            registry.makeGauge(descriptor: Self.name("credential_utilization", unit: "ratio", help: "Share of the rate-limit window used (0–1)."), labels: labels)
                .set(state.usage.usedPercent(kind, now: now) / 100)
            if let reset = state.usage.resetAt(kind, now: now) {
                registry.makeGauge(descriptor: Self.name("credential_reset", unit: "seconds", help: "Seconds until the rate-limit window resets."), labels: labels)
                    .set(max(0, reset.timeIntervalSince(now)))
            }
        }
    }

    private func updateTunnelMetrics(_ tag: String, _ health: TunnelHealth) {
        let labels = [("credential", tag)]
        registry.makeGauge(descriptor: Self.name("tunnel_up", help: "1 while the credential's reverse tunnel is connected, else 0."), labels: labels)
            .set(Double(health.online ? 1 : 0))
        if let rtt = health.lastRoundTrip {
            registry.makeGauge(descriptor: Self.name("tunnel_round_trip", unit: "seconds", help: "Round-trip time of the tunnel's last keepalive ping."), labels: labels)
                .set(Double(rtt.nanoseconds) / 1e9)
        }
        let counter = registry.makeCounter(descriptor: Self.name("tunnel_disconnects", unit: "total", help: "Reverse tunnel sessions lost, by credential."), labels: labels)
        let added = exportedDisconnects.withLock { exported in
            let delta = health.disconnects - (exported[tag] ?? 0)
            exported[tag] = health.disconnects
            return delta
        }
        if added > 0 { counter.increment(by: Int64(added)) }
    }

}

/// The label of a request's route: the known endpoints by name, everything else grouped, so a
/// client cannot make up new series with made-up paths.
enum MetricsRoute {
    static func label(_ route: GatewayRoute) -> String {
        switch route {
        case .status: return "status"
        case .reverse: return "reverse"
        case .metrics: return "metrics"
        case .notFound: return "not_found"
        case .invalidPath: return "invalid_path"
        case .chatGPT: return "usage"
        case .admin: return "admin"
        case .dashboard: return "dashboard"
        case .models: return "models"
        case .proxy(let proxied): return proxied.metricsLabel
        }
    }
}

/// One metric's series by their label values. The registry checks names and help text on every
/// `make…` call; per-request updates look their series up here instead, by a key that needs no
/// array of strings made for it.
private final class SeriesCache<Key: Hashable & Sendable, Series: AnyObject & Sendable>: Sendable {
    private let make: @Sendable (Key) -> Series
    private let series = Mutex<[Key: Series]>([:])

    init(make: @escaping @Sendable (Key) -> Series) {
        self.make = make
    }

    func callAsFunction(_ key: Key) -> Series {
        if let found = series.withLock({ $0[key] }) { return found }
        let created = make(key)
        series.withLock { $0[key] = created }
        return created
    }
}

private struct HTTPResponseSeries: Hashable, Sendable {
    var route: String
    var status: UInt
    var credential: String
    var user: String
}

private struct ResponseSeries: Hashable, Sendable {
    var transport: ResponseTransport
    var outcome: ResponseOutcome
    var credential: String
    var user: String
}

private struct TokenSeries: Hashable, Sendable {
    var credential: String
    var user: String
}

/// The `tokens` series of one credential and user, one per kind.
private final class TokenCounters: Sendable {
    let input: Counter
    let cachedInput: Counter
    let output: Counter

    init(input: Counter, cachedInput: Counter, output: Counter) {
        (self.input, self.cachedInput, self.output) = (input, cachedInput, output)
    }
}

/// One series per transport, made when the metrics are.
private struct TransportSeries<Series: Sendable>: Sendable {
    private let http: Series
    private let webSocket: Series

    init(make: (ResponseTransport) -> Series) {
        http = make(.http)
        webSocket = make(.websocket)
    }

    subscript(transport: ResponseTransport) -> Series {
        switch transport {
        case .http: http
        case .websocket: webSocket
        }
    }
}
