import NIOCore
import PoolCore

/// The response header naming the credential that served a proxied request: what a balancer
/// records as the connector's credential for requests it sent through that connector.
let servingCredentialHeader = servingCredentialHeaderName.description
/// The same, for comparing with header names where they lie in the bytes read.
let servingCredentialHeaderName: StaticString = "x-codexpool-credential"

/// One HTTP request or WebSocket turn at its end: what the metrics count and the history keeps.
struct FinishedRequest {
    var transport: ResponseTransport
    var outcome: ResponseOutcome
    var credential: String?
    /// Through a connector: the connector's own credential, as it said (`x-codexpool-credential`).
    var connectorCredential: String? = nil
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
    /// A model request or turn admitted under the user's limits: its use goes to the ledger.
    var countsTowardLimits = false
}
