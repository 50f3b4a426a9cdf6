import NIOHTTP1

/// Where a request goes (ocm-reference.md §7.1), decided on the raw path.
enum GatewayRoute: Equatable {
    case status(watch: Bool)
    case reverse
    /// Anything under `/v1/`, proxied.
    case proxy
    case notFound

    init(_ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? ""
        let query = parts.count > 1 ? String(parts[1]) : ""
        switch path {
        case "/ocm/v1/status":
            self = .status(watch: query.split(separator: "&").contains { $0 == "watch=true" || $0 == "watch=1" })
        case "/ocm/v1/reverse":
            self = .reverse
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
        let value = UInt32.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
