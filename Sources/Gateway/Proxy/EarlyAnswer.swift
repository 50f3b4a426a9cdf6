/// What an upstream answer that arrived before the client saw anything means for the request:
/// the pure decision shared by HTTP requests and WebSocket upgrades (ocm-reference.md §7.3).
enum EarlyAnswer: Equatable {
    /// 429: mark the credential limited and fail over to the next one.
    case rateLimited
    /// 401 from a local credential not yet refreshed for this request: refresh once, resend.
    case unauthorized
    /// 400 from another instance: it refuses our token (§5.6).
    case peerRejected
    /// Anything else is the client's answer, as upstream gave it.
    case passThrough

    init(status: UInt, isExternal: Bool, alreadyRefreshed: Bool) {
        switch status {
        case 429: self = .rateLimited
        case 401 where !isExternal && !alreadyRefreshed: self = .unauthorized
        case 400 where isExternal: self = .peerRejected
        default: self = .passThrough
        }
    }

    /// Whether the transport must collect the answer and hand it to the dispatch.
    var needsDecision: Bool { self != .passThrough }
}
