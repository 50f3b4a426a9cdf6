import Foundation
import PoolCore

/// The pool's aggregate in the backend's usage shape (`GET wham/usage`, `codex/usage`,
/// `api/codex/usage`; codex-client.md §3.6): what Codex 0.154+ shows in `/status` and its status
/// line, and what usage monitors read. Windows are classified by length, not slot: a pool whose
/// accounts report no 5-hour window answers with the week as the primary window and no secondary
/// (codex-wire-2026.md §4). Percentages are integers, as the CLI requires.
enum PoolUsageAnswer {
    static let fiveHourSeconds = 5 * 3600
    static let weekSeconds = 7 * 86_400

    static func json(_ aggregate: AggregateStatus, additional: [AdditionalRateLimit] = [], planType: String, accountID: String, userName: String,
                     now: Date) -> JSONValue {
        let fiveHour = window(used: aggregate.fiveHourUtilization, seconds: fiveHourSeconds, reset: aggregate.fiveHourReset, now: now)
        let weekly = window(used: aggregate.weeklyUtilization, seconds: weekSeconds, reset: aggregate.weeklyReset, now: now)
        let hasFiveHour = aggregate.fiveHourReset != nil || aggregate.weeklyReset == nil
        let limitReached = aggregate.weeklyUtilization >= 100 || (hasFiveHour && aggregate.fiveHourUtilization >= 100)
        let rateLimit: JSONValue = .object([
            "allowed": .bool(!limitReached),
            "limit_reached": .bool(limitReached),
            "primary_window": hasFiveHour ? fiveHour : weekly,
            "secondary_window": hasFiveHour ? weekly : .null,
        ])
        return .object([
            "user_id": .string("codexpool-user-\(userName.isEmpty ? "anonymous" : userName)"),
            "account_id": .string(accountID),
            "email": .null,
            "plan_type": .string(planType),
            "rate_limit": rateLimit,
            "code_review_rate_limit": .null,
            "additional_rate_limits": additional.isEmpty ? .null : .array(additional.map { additionalEntry($0, now: now) }),
            "credits": .object(["has_credits": .bool(false), "unlimited": .bool(false), "balance": .string("0")]),
            "rate_limit_reached_type": limitReached ? .string("rate_limit_reached") : .null,
            "promo": .null,
        ])
    }

    /// One other limit family as the backend lists it: its name, its id with `_`, its windows
    /// (classified by length, the shorter first).
    private static func additionalEntry(_ limit: AdditionalRateLimit, now: Date) -> JSONValue {
        let windows = [limit.windows.fiveHour, limit.windows.weekly].compactMap { $0 }.map { reading in
            window(used: reading.usedPercent, seconds: (reading.windowMinutes ?? 0) * 60, reset: reading.resetAt, now: now)
        }
        let reached = [limit.windows.fiveHour, limit.windows.weekly].contains { ($0?.usedPercent ?? 0) >= 100 }
        return .object([
            "limit_name": .string(limit.name ?? limit.id),
            "metered_feature": .string(limit.id.replacingOccurrences(of: "-", with: "_")),
            "rate_limit": .object([
                "allowed": .bool(!reached), "limit_reached": .bool(reached),
                "primary_window": windows.first ?? .null, "secondary_window": windows.count > 1 ? windows[1] : .null,
            ]),
        ])
    }

    private static func window(used: Double, seconds: Int, reset: Date?, now: Date) -> JSONValue {
        let resetAt = reset ?? now.addingTimeInterval(TimeInterval(seconds))
        return .object([
            "used_percent": .integer(Int64(used.rounded())),
            "limit_window_seconds": .integer(Int64(seconds)),
            "reset_after_seconds": .integer(Int64(max(0, resetAt.timeIntervalSince(now)).rounded())),
            "reset_at": .integer(Int64(resetAt.timeIntervalSince1970.rounded())),
        ])
    }

    /// `GET wham/accounts/check`: exactly one account, the user's.
    static func accountsCheck(accountID: String, planType: String) -> JSONValue {
        .object([
            "accounts": .array([.object([
                "id": .string(accountID), "workspace_backend_origin": .string("NO_CONSTRAINT"),
                "account_routing_override": .string("NO_CONSTRAINT"), "plan_type": .string(planType),
            ])]),
            "default_account_id": .string(accountID),
            "account_ordering": .array([.string(accountID)]),
        ])
    }

    /// `GET wham/rate-limit-reset-credits`: a pool has none to give.
    static let resetCredits: JSONValue = .object(["credits": .array([]), "available_count": .integer(0), "total_earned_count": .integer(0)])

    /// The ChatGPT account id codexpool shows a user (`ChatGPT-Account-Id` in ChatGPT mode).
    static func accountID(for userName: String) -> String {
        "codexpool-\(userName.isEmpty ? "pool" : userName)"
    }
}
