public import Foundation

/// Each user's use per UTC day, over the last few weeks: what per-user limits are checked
/// against. The gateway seeds it from the store at start (so limits survive restarts), counts a
/// request when it is admitted and its tokens and cost when it ends.
public struct UserUsageLedger: Sendable {
    private var days: [String: [Int: UserUse]] = [:]
    /// Days kept: a month window reaches back at most 30 days from its last day.
    public static let daysKept = 32

    public init() {}

    /// Adds `use` to the user's day holding `time`.
    public mutating func add(_ use: UserUse, user: String, at time: Date) {
        let day = CalendarWindow.dayNumber(time)
        days[user, default: [:]][day, default: UserUse()] = (days[user]?[day] ?? UserUse()) + use
        prune(user, before: day - Self.daysKept)
    }

    /// Stored totals of whole days (the store's ledger at start).
    public mutating func seed(user: String, day: Int, use: UserUse) {
        days[user, default: [:]][day, default: UserUse()] = (days[user]?[day] ?? UserUse()) + use
    }

    /// The user's use in the window holding `now`.
    public func use(_ user: String, in window: CalendarWindow, now: Date) -> UserUse {
        let first = window.firstDay(containing: now)
        let last = CalendarWindow.dayNumber(now)
        return (days[user] ?? [:]).reduce(into: UserUse()) { total, entry in
            if entry.key >= first, entry.key <= last { total = total + entry.value }
        }
    }

    /// The limit the user is at or over now, or nil. When several are, the one that frees up
    /// last: only then can the user go on.
    public func refusal(_ user: String, limits: UserLimits, now: Date) -> UserLimitRefusal? {
        var worst: UserLimitRefusal?
        for (kind, value) in limits.ledgerLimits {
            let used = kind.measure(use(user, in: kind.window, now: now))
            guard used >= value else { continue }
            let refusal = UserLimitRefusal(user: user, limit: .use(kind), value: value, used: used, resetsAt: kind.window.end(containing: now))
            if let current = worst, let currentReset = current.resetsAt, let reset = refusal.resetsAt, currentReset >= reset { continue }
            worst = refusal
        }
        return worst
    }

    private mutating func prune(_ user: String, before day: Int) {
        guard let entries = days[user], entries.keys.contains(where: { $0 < day }) else { return }
        days[user] = entries.filter { $0.key >= day }
    }
}
