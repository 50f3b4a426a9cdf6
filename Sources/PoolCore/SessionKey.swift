/// Which request header identifies a Codex session for stickiness.
///
/// Codex 0.147 sends `session-id` (with a hyphen); older clients and the reference used
/// `session_id`; `thread-id` and `x-client-request-id` carry the same thread id and serve when a
/// front proxy dropped the others (nginx drops underscored headers by default).
public enum SessionKey {
    public static let headerNames = ["session-id", "session_id", "thread-id", "x-client-request-id"]

    /// The session key of a request, or nil when it has none (such requests are never sticky).
    /// One pass over the headers, comparing names without lowercasing copies (this runs for
    /// every request); the earlier name of `headerNames` wins.
    public static func from(_ headers: HeaderFields) -> String? {
        key(in: headers)
    }

    /// Takes any sequence of name–value pairs (NIO's `HTTPHeaders` too) so no array is built for it.
    @inlinable
    public static func from<Headers: Sequence<(name: String, value: String)>>(_ headers: Headers) -> String? {
        key(in: headers)
    }

    @inlinable
    static func key<Headers: Sequence<(name: String, value: String)>>(in headers: Headers) -> String? {
        var best: (rank: Int, value: String)?
        for (name, value) in headers where !value.isEmpty && value.utf8.count <= 256 {
            guard let rank = rank(of: name), rank < (best?.rank ?? Int.max) else { continue }
            best = (rank, value)
            if rank == 0 { break }
        }
        return best?.value
    }

    /// The position of `name` in `headerNames`, in any case.
    @usableFromInline
    static func rank(of name: String) -> Int? {
        let length = name.utf8.count
        guard length == 9 || length == 10 || length == 19 else { return nil }
        for (rank, candidate) in headerNames.enumerated() where candidate.utf8.count == length {
            if name.utf8.elementsEqual(candidate.utf8, by: { ($0 | 0x20) == $1 || $0 == $1 }) { return rank }
        }
        return nil
    }
}
