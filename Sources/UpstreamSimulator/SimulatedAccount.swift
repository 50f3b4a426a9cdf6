public import Foundation

/// One simulated ChatGPT account of the fake Codex backend.
public struct SimulatedAccount: Sendable {
    /// How the backend treats model requests for this account.
    public enum Behavior: Hashable, Sendable {
        /// Answer normally (or with 429 once a window is used up).
        case normal
        /// Always answer 429 `usage_limit_reached`, whatever the windows say.
        case rateLimited
        /// Start the answer, then drop the connection before `response.completed`.
        case dropMidStream
        /// Start the answer, then send nothing more until the other side goes away.
        case stallMidStream
        /// Stream the answer, then end it with `response.failed` instead of `response.completed`.
        case failMidAnswer
        /// Answer every model request with this HTTP status and a JSON error.
        case failing(status: Int)
        /// The backend no longer accepts the account's tokens (signed out elsewhere, revoked): every
        /// model request and WebSocket upgrade gets 401, refreshed tokens too.
        case unauthorized
    }

    /// `ChatGPT-Account-Id`, also the `chatgpt_account_id` claim of its tokens.
    public var accountID: String
    public var email: String
    public var rateLimits: SimulatedRateLimits
    public var behavior: Behavior
    /// The assistant's answer text, streamed in `deltaCount` pieces.
    public var reply: String
    public var deltaCount: Int
    /// Usage reported in `response.completed`.
    public var inputTokens: Int
    public var outputTokens: Int
    public var cachedTokens: Int
    /// Added to both windows after each answered (non-warm-up) turn.
    public var percentPerTurn: Double
    /// Pause between an answer's events (SSE or WebSocket), like a model producing tokens; 0 sends it at once.
    public var eventIntervalMilliseconds: Int = 0
    /// A WebSocket answer goes out in one write, with a ping after its first message and its
    /// second message in two fragments, as a busy backend's frames reach the relay: reads that
    /// hold many frames and split them anywhere.
    public var batchesWebSocketFrames = false
    /// Pause before the answer's head (or a WebSocket upgrade's 101), like a model thinking before
    /// its first token.
    public var answerDelayMilliseconds: Int = 0
    /// Answers carry an encrypted reasoning item that only this account accepts back.
    public var reasons = false
    /// A shell command the model asks Codex to run (`exec_command`) before it answers: the
    /// first request of a turn gets the call, the request carrying its output gets the reply.
    public var toolCommand: String?
    /// The backend's cap on one WebSocket (60 minutes upstream), as a number of answers: the
    /// request after them gets `websocket_connection_limit_reached` and the socket closes.
    public var answersPerWebSocket: Int?
    /// Access tokens the backend accepts for this account.
    public var accessTokens: Set<String>
    /// The one refresh token that currently works; refreshing rotates it.
    public var refreshToken: String
    /// Refresh tokens already exchanged (answered with `refresh_token_reused`).
    public var usedRefreshTokens: Set<String> = []

    public init(
        accountID: String, planType: String = "plus", fiveHourPercent: Double? = 0, weeklyPercent: Double = 0,
        fiveHourResetIn: Int = 3600, weeklyResetIn: Int = 5 * 86_400, now: Date = Date(),
        behavior: Behavior = .normal, reply: String? = nil, deltaCount: Int = 3,
        inputTokens: Int = 120, outputTokens: Int = 8, cachedTokens: Int = 0, percentPerTurn: Double = 0,
        accessToken: String? = nil, refreshToken: String? = nil
    ) {
        let unixNow = Int(now.timeIntervalSince1970)
        self.accountID = accountID
        email = "\(accountID)@example.com"
        rateLimits = SimulatedRateLimits(
            planType: planType,
            fiveHour: fiveHourPercent.map { .init(usedPercent: $0, windowMinutes: 300, resetAt: unixNow + fiveHourResetIn) },
            weekly: .init(usedPercent: weeklyPercent, windowMinutes: 10080, resetAt: unixNow + weeklyResetIn))
        self.behavior = behavior
        self.reply = reply ?? "Hello from \(accountID)."
        self.deltaCount = max(1, deltaCount)
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedTokens = cachedTokens
        self.percentPerTurn = percentPerTurn
        accessTokens = [accessToken ?? "access-\(accountID)"]
        self.refreshToken = refreshToken ?? "refresh-\(accountID)"
    }

    /// The Codex CLI `auth.json` signed in to this account with its current tokens: the
    /// credential file a codexpool in front of the simulator is given.
    public func authJSON(lastRefresh: Date = Date()) -> String {
        Self.authJSON(access: accessTokens.first!, refresh: refreshToken, accountID: accountID, lastRefresh: lastRefresh)
    }

    /// An `auth.json` with the given tokens (an expired one, say).
    public static func authJSON(access: String, refresh: String, accountID: String, lastRefresh: Date = Date()) -> String {
        """
        {"OPENAI_API_KEY":null,"tokens":{"id_token":null,"access_token":"\(access)","refresh_token":"\(refresh)","account_id":"\(accountID)"},\
        "last_refresh":"\(ISO8601DateFormatter().string(from: lastRefresh))"}
        """
    }

    /// An unsigned JWT like the ones the real token endpoint issues: `exp` and the account claims.
    public static func accessTokenJWT(accountID: String, planType: String, expiresAt: Date, nonce: String = UUID().uuidString) -> String {
        let payload: [String: Any] = [
            "exp": Int(expiresAt.timeIntervalSince1970),
            "jti": nonce,
            "https://api.openai.com/auth": ["chatgpt_account_id": accountID, "chatgpt_plan_type": planType],
        ]
        let header = base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let body = base64URL((try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data())
        return "\(header).\(body).sig"
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// One request the simulator received, for assertions.
public struct SimulatedRequest: Sendable {
    public enum Transport: String, Hashable, Sendable {
        case http
        case webSocket
    }

    public var transport: Transport
    public var method: String
    public var path: String
    /// The account the bearer token belonged to; nil when unknown.
    public var accountID: String?
    /// Lower-cased names.
    public var headers: [(name: String, value: String)]
    /// The request body, or for WebSocket the text message.
    public var body: Data
    /// For model requests: whether it was a warm-up (`generate: false`).
    public var isWarmUp: Bool

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name == lowered }?.value
    }
}
