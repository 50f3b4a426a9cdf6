public import Foundation
public import GRDB

/// One finished HTTP request or WebSocket turn, as the history keeps it: who, which account,
/// what happened, how fast, how many tokens and dollars — never prompts, bodies or secrets.
public struct RequestRecord: Codable, Hashable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "requests"

    public var id: Int64?
    /// Unix seconds when the request finished.
    public var time: Double
    public var requestID: String
    public var user: String
    public var credential: String?
    /// For a request through a connector: the connector's own credential, when it says.
    public var connectorCredential: String?
    public var model: String?
    /// `http` or `websocket`.
    public var transport: String
    public var route: String
    /// `completed`, `upstream_error`, `upstream_rate_limited`, `client_disconnected`,
    /// `interrupted`, `no_credential`, `rejected`.
    public var outcome: String
    public var status: Int?
    public var timeToFirstByteMilliseconds: Double?
    public var durationMilliseconds: Double
    public var inputTokens: Int
    public var cachedInputTokens: Int
    public var outputTokens: Int
    public var reasoningTokens: Int
    public var costUSD: Double
    public var failovers: Int
    /// A short summary of what went wrong, when something did.
    public var error: String?

    public init(time: Date, requestID: String, user: String, credential: String?, connectorCredential: String? = nil, model: String?,
                transport: String, route: String, outcome: String, status: Int?, timeToFirstByteMilliseconds: Double?,
                durationMilliseconds: Double, inputTokens: Int = 0, cachedInputTokens: Int = 0, outputTokens: Int = 0,
                reasoningTokens: Int = 0, costUSD: Double = 0, failovers: Int = 0, error: String? = nil) {
        self.time = time.timeIntervalSince1970
        self.requestID = requestID
        self.user = user
        self.credential = credential
        self.connectorCredential = connectorCredential
        self.model = model
        self.transport = transport
        self.route = route
        self.outcome = outcome
        self.status = status
        self.timeToFirstByteMilliseconds = timeToFirstByteMilliseconds
        self.durationMilliseconds = durationMilliseconds
        self.inputTokens = inputTokens
        self.cachedInputTokens = cachedInputTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
        self.costUSD = costUSD
        self.failovers = failovers
        self.error = error.map { String($0.prefix(300)) }
    }

    public var succeeded: Bool { outcome == "completed" }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    enum CodingKeys: String, CodingKey, ColumnExpression {
        case id, time, requestID = "request_id", user, credential, connectorCredential = "connector_credential", model, transport, route
        case outcome, status, timeToFirstByteMilliseconds = "ttfb_ms", durationMilliseconds = "duration_ms", inputTokens = "input_tokens"
        case cachedInputTokens = "cached_input_tokens", outputTokens = "output_tokens", reasoningTokens = "reasoning_tokens"
        case costUSD = "cost_usd", failovers, error
    }
}
