/// Which request header identifies a Codex session for stickiness.
///
/// Codex 0.147 sends `session-id` (with a hyphen); older clients and the reference used
/// `session_id`; `thread-id` and `x-client-request-id` carry the same thread id and serve when a
/// front proxy dropped the others (nginx drops underscored headers by default).
public enum SessionKey {
    public static let headerNames = ["session-id", "session_id", "thread-id", "x-client-request-id"]

    /// The session key of a request, or nil when it has none (such requests are never sticky).
    public static func from(_ headers: HeaderFields) -> String? {
        for name in headerNames {
            if let value = headers.first(where: { $0.name.lowercased() == name })?.value, !value.isEmpty, value.count <= 256 {
                return value
            }
        }
        return nil
    }
}
