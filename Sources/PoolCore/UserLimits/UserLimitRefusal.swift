public import Foundation

/// A user at one of their limits: which, at what use, and when it frees up.
public struct UserLimitRefusal: Error, Hashable, Sendable {
    public enum Limit: Hashable, Sendable {
        case use(UserLimitKind)
        case concurrentSessions
    }

    public var user: String
    public var limit: Limit
    public var value: Double
    public var used: Double
    /// nil for the session limit: it frees up when a session ends.
    public var resetsAt: Date?

    public init(user: String, limit: Limit, value: Double, used: Double, resetsAt: Date?) {
        self.user = user
        self.limit = limit
        self.value = value
        self.used = used
        self.resetsAt = resetsAt
    }

    /// The configuration key of the limit (`requests_per_day`, `max_concurrent_sessions`, …).
    public var limitName: String {
        switch limit {
        case .use(let kind): kind.rawValue
        case .concurrentSessions: "max_concurrent_sessions"
        }
    }

    /// What the client is told, e.g. `user bob reached requests_per_day: 500 of 500 used; resets at
    /// 2026-12-08T00:00:00Z (in 3h 12m)`.
    public func message(now: Date) -> String {
        let who = user.isEmpty ? "this instance" : "user \(user)"
        switch limit {
        case .use(let kind):
            let isCost = kind.rawValue.hasPrefix("cost")
            let figure = { (number: Double) in isCost ? String(format: "$%.2f", number) : String(Int(number)) }
            let reset = resetsAt.map { "; resets at \(ISO8601DateFormatter().string(from: $0)) (in \(DurationText.interval($0.timeIntervalSince(now))))" } ?? ""
            return "\(who) reached \(kind.rawValue): \(figure(used)) of \(figure(value)) used\(reset)"
        case .concurrentSessions:
            return "\(who) reached max_concurrent_sessions: \(Int(used)) of \(Int(value)) sessions open; try again when one of them ends"
        }
    }
}
