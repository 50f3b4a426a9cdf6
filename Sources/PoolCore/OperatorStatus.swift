public import Foundation

/// `GET /ocm/v1/status?detail=true`: the aggregate a user sees plus every credential behind it —
/// plan, use, why it is not usable, and its reverse session's health — for operators and
/// `codexpool status`. The plain status keeps the reference's five fields for peers.
/// Field names are the JSON's (snake case, like the reference's status), so the same type
/// encodes the answer and decodes it in `codexpool status`.
public struct OperatorStatus: Codable, Sendable {
    public struct Window: Codable, Sendable {
        public var used_percent: Double
        public var resets_at: Int?
    }

    public struct Tunnel: Codable, Sendable {
        public var online: Bool
        public var since: Int
        public var round_trip_ms: Double?
        public var disconnects: Int

        public init(online: Bool, since: Date, roundTripMilliseconds: Double?, disconnects: Int) {
            self.online = online
            self.since = OperatorStatus.unix(since) ?? 0
            round_trip_ms = roundTripMilliseconds
            self.disconnects = disconnects
        }
    }

    public struct Credential: Codable, Sendable {
        public var tag: String
        /// local, external (another instance by URL) or receiver (a connector dials in).
        public var kind: String
        public var plan_type: String?
        public var plan_weight: Double
        public var usable: Bool
        public var unusable_reason: String?
        public var five_hour: Window?
        public var weekly: Window?
        /// Live sticky sessions on this credential.
        public var sessions: Int
        public var tunnel: Tunnel?
        /// Since when a rotated token exists only in memory (its file could not be written).
        public var unsaved_token_since: Int?
    }

    public var five_hour_utilization: Double
    public var five_hour_reset: Int
    public var weekly_utilization: Double
    public var weekly_reset: Int
    public var plan_weight: Double
    public var credentials: [Credential]

    public init(aggregate: AggregateStatus, credentials: [CredentialState], sessions: [String: Int], tunnels: [String: Tunnel], now: Date) {
        five_hour_utilization = aggregate.fiveHourUtilization
        five_hour_reset = Self.unix(aggregate.fiveHourReset) ?? 0
        weekly_utilization = aggregate.weeklyUtilization
        weekly_reset = Self.unix(aggregate.weeklyReset) ?? 0
        plan_weight = aggregate.planWeight
        self.credentials = credentials.map { state in
            let usability = state.usability(now: now)
            var reason: String?
            if case .unusable(let skip) = usability { reason = skip.description(now: now) }
            let windows = state.usage.hasData ? (
                Window(used_percent: state.usage.usedPercent(.fiveHour, now: now), resets_at: Self.unix(state.usage.resetAt(.fiveHour, now: now))),
                Window(used_percent: state.usage.usedPercent(.weekly, now: now), resets_at: Self.unix(state.usage.resetAt(.weekly, now: now)))
            ) : nil
            let tunnel = tunnels[state.tag]
            return Credential(tag: state.tag, kind: Self.kindName(state.kind), plan_type: state.usage.planType, plan_weight: state.planWeight,
                              usable: usability.isUsable, unusable_reason: reason, five_hour: windows?.0, weekly: windows?.1,
                              sessions: sessions[state.tag] ?? 0, tunnel: tunnel, unsaved_token_since: Self.unix(state.unsavedTokenSince))
        }
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ((try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
    }

    private static func kindName(_ kind: CredentialState.Kind) -> String {
        switch kind {
        case .local: "local"
        case .externalForward: "external"
        case .externalReceiver: "receiver"
        }
    }

    static func unix(_ date: Date?) -> Int? {
        date.map { Int($0.timeIntervalSince1970.rounded()) }
    }
}
