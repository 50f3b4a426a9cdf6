import NIOCore
import PoolCore

/// One HTTP request or WebSocket turn at its end: what the metrics count and the history keeps.
struct FinishedRequest {
    var transport: ResponseTransport
    var outcome: ResponseOutcome
    var credential: String?
    var user: AuthenticatedUser
    var requestID: String
    var model: String?
    var route: String
    var status: Int?
    var timeToFirstByte: TimeAmount?
    var duration: TimeAmount
    var usage: CompletedUsage?
    /// Credentials given up on before the one that answered (429 failovers, token failures).
    var failovers: Int = 0
    /// What went wrong, briefly, when something did.
    var error: String?
}
