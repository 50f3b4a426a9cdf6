import Foundation
import NIOCore
import PoolCore

/// `GET /ocm/v1/status?detail=true`: the aggregate a user sees plus every credential behind it —
/// plan, use, why it is not usable, and its reverse session's health — for operators and
/// `codexpool status`. The plain status keeps the reference's five fields for peers.
struct OperatorStatus: Encodable {
    struct Window: Encodable {
        var used_percent: Double
        var resets_at: Int?
    }

    struct Tunnel: Encodable {
        var online: Bool
        var since: Int
        var round_trip_ms: Double?
        var disconnects: Int
    }

    struct Credential: Encodable {
        var tag: String
        var kind: String
        var plan_type: String?
        var plan_weight: Double
        var usable: Bool
        var unusable_reason: String?
        var five_hour: Window?
        var weekly: Window?
        var tunnel: Tunnel?
    }

    var five_hour_utilization: Double
    var five_hour_reset: Int
    var weekly_utilization: Double
    var weekly_reset: Int
    var plan_weight: Double
    var credentials: [Credential]

    init(aggregate: AggregateStatus, credentials: [CredentialState], tunnels: [String: TunnelHealth], now: Date) {
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
            let tunnel = tunnels[state.tag].map {
                Tunnel(online: $0.online, since: Self.unix($0.since) ?? 0,
                       round_trip_ms: $0.lastRoundTrip.map { Double($0.nanoseconds) / 1e6 }, disconnects: $0.disconnects)
            }
            return Credential(tag: state.tag, kind: Self.kindName(state.kind), plan_type: state.usage.planType, plan_weight: state.planWeight,
                              usable: usability.isUsable, unusable_reason: reason, five_hour: windows?.0, weekly: windows?.1, tunnel: tunnel)
        }
    }

    var json: String {
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

    private static func unix(_ date: Date?) -> Int? {
        date.map { Int($0.timeIntervalSince1970.rounded()) }
    }
}
