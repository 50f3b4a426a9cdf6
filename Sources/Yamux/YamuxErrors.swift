/// Why a yamux session ended.
public enum YamuxSessionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The peer broke the protocol; a GoAway with code 1 was sent.
    case protocolViolation(String)
    /// A ping went unanswered for longer than the keepalive timeout: the path is dead.
    case keepAliveTimeout
    /// The peer sent GoAway: no new streams may be opened.
    case remoteGoAway(YamuxGoAwayCode)
    /// This side sent GoAway or is shutting down.
    case localGoAway
    /// All stream ids of this side are used up.
    case streamsExhausted
    /// The underlying connection closed.
    case connectionClosed

    public var description: String {
        switch self {
        case .protocolViolation(let detail): "yamux protocol violation: \(detail)"
        case .keepAliveTimeout: "yamux keepalive timeout: the peer stopped answering pings"
        case .remoteGoAway(let code): "the peer ended the yamux session (GoAway \(code))"
        case .localGoAway: "the yamux session is shutting down"
        case .streamsExhausted: "yamux stream ids exhausted"
        case .connectionClosed: "the yamux connection closed"
        }
    }
}

/// Why one stream ended abnormally.
public enum YamuxStreamError: Error, Hashable, Sendable, CustomStringConvertible {
    case resetByPeer
    case openTimeout
    case closeTimeout
    case rejected

    public var description: String {
        switch self {
        case .resetByPeer: "the yamux stream was reset by the peer"
        case .openTimeout: "the peer did not acknowledge the new yamux stream in time"
        case .closeTimeout: "the peer did not close the half-closed yamux stream in time"
        case .rejected: "the yamux stream was refused"
        }
    }
}
