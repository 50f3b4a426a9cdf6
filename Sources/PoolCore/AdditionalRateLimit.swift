import Foundation

/// A rate-limit family besides Codex's own (`x-<id>-primary-used-percent` headers, a
/// `codex.rate_limits` event naming another `metered_limit_name`, an `additional_rate_limits`
/// entry; codex-wire-2026.md §4) — e.g. a per-model limit. It is reported and aggregated, not
/// used for selection.
public struct AdditionalRateLimit: Hashable, Sendable {
    /// The limit id as headers spell it: lower case, `-` for `_` (`codex-bengalfox`).
    public var id: String
    /// The human name (`x-<id>-limit-name`, `limit_name`), when given.
    public var name: String?
    /// Its windows, classified by length like the main family's.
    public var windows: RateLimitSnapshot

    public init(id: String, name: String? = nil, windows: RateLimitSnapshot) {
        self.id = RateLimitSnapshot.normalizedLimitID(id)
        self.name = name
        self.windows = RateLimitSnapshot(fiveHour: windows.fiveHour, weekly: windows.weekly)
    }

    /// The pool's view of one family: the members that report it, each weighted by plan, as the
    /// share of their combined allowance that is used; the earliest reset of each window.
    public static func aggregate(_ members: [(limit: AdditionalRateLimit, weight: Double)]) -> AdditionalRateLimit? {
        guard let first = members.first?.limit else { return nil }
        func combine(_ window: (RateLimitSnapshot) -> RateLimitWindow?) -> RateLimitWindow? {
            let readings = members.compactMap { member in window(member.limit.windows).map { ($0, max(member.weight, 0.0001)) } }
            guard !readings.isEmpty else { return nil }
            let total = readings.reduce(0) { $0 + $1.1 }
            let used = readings.reduce(0) { $0 + $1.0.usedPercent * $1.1 } / total
            return RateLimitWindow(usedPercent: used, resetAt: readings.compactMap(\.0.resetAt).min(),
                                   windowMinutes: readings.first?.0.windowMinutes)
        }
        return AdditionalRateLimit(id: first.id, name: members.lazy.compactMap(\.limit.name).first,
                                   windows: RateLimitSnapshot(fiveHour: combine(\.fiveHour), weekly: combine(\.weekly)))
    }
}
