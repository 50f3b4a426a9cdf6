import Configuration
import Foundation
import PoolCore

/// Each user's use against their limits, for `GET /api/v1/usage` (`limits`) and the dashboard.
enum UserLimitsAnswer {
    /// - Parameter users: the users the viewer may see (all for an admin, else themselves).
    static func json(_ users: [UserConfiguration], book: UserLimitBook, now: Date) -> JSONValue {
        .array(users.map { user in
            let standing = book.standing(user.name, now: now)
            let limits = user.limits
            var entries: [JSONValue] = limits.ledgerLimits.map { kind, value in
                let use = switch kind.window {
                case .day: standing.day
                case .week: standing.week
                case .month: standing.month
                }
                let used = kind.measure(use)
                return .object([
                    "limit": .string(kind.rawValue), "value": .number(value), "used": .number((used * 10_000).rounded() / 10_000),
                    "reached": .bool(used >= value), "resets_at": .integer(Int64(kind.window.end(containing: now).timeIntervalSince1970)),
                ])
            }
            if let maximum = limits.maxConcurrentSessions {
                entries.append(.object([
                    "limit": .string("max_concurrent_sessions"), "value": .integer(Int64(maximum)), "used": .integer(Int64(standing.sessions)),
                    "reached": .bool(standing.sessions >= maximum), "resets_at": .null,
                ]))
            }
            return .object([
                "user": .string(user.name),
                "today": use(standing.day), "this_week": use(standing.week), "this_month": use(standing.month),
                "open_sessions": .integer(Int64(standing.sessions)),
                "limits": .array(entries),
            ])
        })
    }

    private static func use(_ use: UserUse) -> JSONValue {
        .object(["requests": .integer(Int64(use.requests)), "tokens": .integer(Int64(use.tokens)), "cost_usd": .number((use.costUSD * 10_000).rounded() / 10_000)])
    }
}
