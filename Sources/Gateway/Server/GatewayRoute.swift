import NIOHTTP1

/// Where a request goes (ocm-reference.md §7.1), decided on the raw path.
enum GatewayRoute: Equatable {
    /// `detail`: the operator's view with every credential (not part of the reference).
    case status(watch: Bool, detail: Bool)
    case reverse
    /// Prometheus text exposition.
    case metrics
    /// Anything under `/v1/`, proxied.
    case proxy
    case notFound

    init(_ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? ""
        let query = parts.count > 1 ? String(parts[1]) : ""
        switch path {
        case "/ocm/v1/status":
            let flags = query.split(separator: "&")
            self = .status(watch: flags.contains { $0 == "watch=true" || $0 == "watch=1" },
                           detail: flags.contains { $0 == "detail=true" || $0 == "detail=1" })
        case "/ocm/v1/reverse":
            self = .reverse
        case "/metrics":
            self = .metrics
        default:
            self = path.hasPrefix("/v1/") ? .proxy : .notFound
        }
    }

    /// A Responses WebSocket upgrade (§7.1 rule 4).
    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.uri.hasPrefix("/v1/responses") && head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }
}

/// A short random id per inbound request, in every log line about it (§11).
enum RequestID {
    static func make() -> String {
        var random = CheapRandom()
        let value = UInt32.random(in: .min ... .max, using: &random)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
