/// The sessions each user has open now, for `max_concurrent_sessions`: a key (session id, or
/// one per request without one) is open while any request or WebSocket of it is.
public struct OpenSessions: Sendable {
    private var open: [String: [String: Int]] = [:]

    public init() {}

    /// Opens one use of `key`; false (nothing changed) when that would be a new session beyond `maximum`.
    public mutating func open(_ key: String, user: String, maximum: Int?) -> Bool {
        var sessions = open[user] ?? [:]
        if sessions[key] == nil, let maximum, sessions.count >= maximum { return false }
        sessions[key, default: 0] += 1
        open[user] = sessions
        return true
    }

    public mutating func close(_ key: String, user: String) {
        guard let count = open[user]?[key] else { return }
        open[user]?[key] = count > 1 ? count - 1 : nil
        if open[user]?.isEmpty == true { open[user] = nil }
    }

    public func count(_ user: String) -> Int {
        open[user]?.count ?? 0
    }
}
