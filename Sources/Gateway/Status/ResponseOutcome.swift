/// How a proxied request or WebSocket turn ended, for `codexpool_responses_total`.
enum ResponseOutcome: String, Sendable {
    /// The model's answer arrived in full (`response.completed`, or a non-streaming 2xx).
    case completed
    /// Upstream answered with an error, broke off mid-stream, or could not be reached.
    case upstreamError = "upstream_error"
    /// Upstream (or every credential) answered 429.
    case upstreamRateLimited = "upstream_rate_limited"
    /// The client went away before the answer was complete.
    case clientDisconnected = "client_disconnected"
    /// The credential was taken away (rebalancing, connector lost) while the request waited.
    case interrupted
    /// No credential could serve the request at all.
    case noCredential = "no_credential"
    /// codexpool refused it before asking any credential (a body over the limit).
    case rejected
    /// The user was at one of their limits (`users[].limits`).
    case userLimited = "user_limited"
}

enum ResponseTransport: String, Sendable {
    case http
    case websocket
}

/// Why the listener refused a request or connection (`codexpool_refusals_total`): a fixed set,
/// so that made-up requests cannot create series.
enum RefusalReason: String, Sendable, CaseIterable {
    case unauthenticated
    case authenticationThrottled = "authentication_throttled"
    case headerTooLarge = "header_too_large"
    case headerTimeout = "header_timeout"
    case bodyTooLarge = "body_too_large"
    case tooManyConnections = "too_many_connections"
    case unknownRoute = "unknown_route"
    case invalidPath = "invalid_path"
    case webSocketMessageTooLarge = "websocket_message_too_large"
    case userLimit = "user_limit"
}
