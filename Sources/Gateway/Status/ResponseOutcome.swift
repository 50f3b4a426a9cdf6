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
}

enum ResponseTransport: String, Sendable {
    case http
    case websocket
}
