import NIOHTTP1

/// Where a request goes (ocm-reference.md §7.1), decided on the raw path — after checking it is
/// a plain path: only the routes codexpool knows reach a credential, never a made-up one.
enum GatewayRoute: Equatable {
    /// `detail`: the operator's view with every credential (not part of the reference).
    case status(watch: Bool, detail: Bool)
    case reverse
    /// Prometheus text exposition.
    case metrics
    /// A Codex route under `/v1/` (or its ChatGPT-mode alias under `/backend-api/codex/`), proxied.
    case proxy(ProxiedRoute)
    /// What a Codex CLI signed in "with ChatGPT" asks its `chatgpt_base_url` for, answered from the pool.
    case chatGPT(ChatGPTRoute)
    /// The admin API under `/api/v1/`: the rest of the path, and the query.
    case admin(path: String, query: String)
    /// The dashboard page.
    case dashboard
    /// `GET /v1/models` (nil) and `GET /v1/models/{id}`, answered from the pool's catalogs.
    case models(id: String?)
    case notFound
    /// Dot segments, empty segments, encoded dots or slashes, backslashes, control bytes: refused
    /// before anything else looks at it.
    case invalidPath(String)

    /// The `/v1/` routes forwarded upstream, with the metrics label of each.
    enum ProxiedRoute: String, CaseIterable {
        case responses = "/v1/responses"
        case responsesCompact = "/v1/responses/compact"
        case chatCompletions = "/v1/chat/completions"
        case imageGenerations = "/v1/images/generations"
        case imageEdits = "/v1/images/edits"

        var metricsLabel: String {
            switch self {
            case .responses: "responses"
            case .responsesCompact: "responses_compact"
            case .chatCompletions: "chat_completions"
            case .imageGenerations: "image_generations"
            case .imageEdits: "image_edits"
            }
        }

        /// The OpenAI API's routes (not Codex's): their refusals are always in the OpenAI JSON shape.
        var speaksOpenAI: Bool {
            self == .chatCompletions || isImages
        }

        var isImages: Bool {
            self == .imageGenerations || self == .imageEdits
        }
    }

    enum ChatGPTRoute: Equatable {
        case usage
        case accountsCheck
        case resetCredits
    }

    /// ChatGPT-mode paths (codex-wire-2026.md §6) and the `/v1/` route each model path stands for.
    static let chatGPTAliases: [String: ProxiedRoute] = [
        "/backend-api/codex/responses": .responses, "/backend-api/codex/responses/compact": .responsesCompact,
    ]
    static let chatGPTRoutes: [String: ChatGPTRoute] = [
        "/backend-api/wham/usage": .usage, "/backend-api/codex/usage": .usage, "/api/codex/usage": .usage, "/wham/usage": .usage,
        "/backend-api/wham/accounts/check": .accountsCheck, "/backend-api/wham/rate-limit-reset-credits": .resetCredits,
    ]

    /// The `/v1/` form of a proxied request's URI (query kept), which the upstream plan maps.
    static func canonicalProxyURI(_ uri: String) -> String {
        let (path, query) = pathAndQuery(uri)
        guard let route = chatGPTAliases[path] else { return uri }
        return route.rawValue + (query.map { "?" + $0 } ?? "")
    }

    /// A URI's path and its query (after the first `?`, nil when there is none), without the
    /// arrays a split makes (this runs several times for every request).
    static func pathAndQuery(_ uri: String) -> (path: String, query: String?) {
        guard let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (uri, nil) }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }

    init(_ head: HTTPRequestHead) {
        let (path, queryPart) = Self.pathAndQuery(head.uri)
        let query = queryPart ?? ""
        if let problem = Self.unsafePathProblem(path) {
            self = .invalidPath(problem)
            return
        }
        switch path {
        case "/ocm/v1/status":
            let flags = query.split(separator: "&")
            self = .status(watch: flags.contains { $0 == "watch=true" || $0 == "watch=1" },
                           detail: flags.contains { $0 == "detail=true" || $0 == "detail=1" })
        case "/ocm/v1/reverse":
            self = .reverse
        case "/metrics":
            self = .metrics
        case "/dashboard", "/dashboard/":
            self = .dashboard
        default:
            if let chatGPT = Self.chatGPTRoutes[path] {
                self = .chatGPT(chatGPT)
            } else if path == "/v1/models" {
                self = .models(id: nil)
            } else if path.hasPrefix("/v1/models/"), !path.dropFirst("/v1/models/".count).contains("/") {
                self = .models(id: String(path.dropFirst("/v1/models/".count)))
            } else if path.hasPrefix("/api/v1/") {
                self = .admin(path: String(path.dropFirst("/api/v1/".count)), query: query)
            } else {
                self = (ProxiedRoute(rawValue: path) ?? Self.chatGPTAliases[path]).map(Self.proxy) ?? .notFound
            }
        }
    }

    /// Why `path` is not a plain absolute path, or nil when it is.
    static func unsafePathProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "it must start with /" }
        // Every request passes here: one scan of the bytes clears the usual plain path without
        // allocating; only a path with '%' or '.' is looked at more closely.
        var sawPercent = false, sawDot = false, emptySegment = false
        var previous: UInt8 = 0
        for byte in path.utf8 {
            if byte < 0x21 || byte == 0x7f || byte == UInt8(ascii: "\\") { return "control characters, spaces or backslashes" }
            if byte == UInt8(ascii: "%") { sawPercent = true }
            if byte == UInt8(ascii: ".") { sawDot = true }
            if byte == UInt8(ascii: "/"), previous == UInt8(ascii: "/") { emptySegment = true }
            previous = byte
        }
        if sawPercent {
            let lowered = path.lowercased()
            // Encoded dots, slashes and backslashes would become segments once an upstream decodes them.
            for encoded in ["%2e", "%2f", "%5c", "%00"] where lowered.contains(encoded) { return "encoded \(encoded)" }
        }
        if emptySegment || (path.utf8.count > 1 && previous == UInt8(ascii: "/")) { return "empty segment (//)" }
        guard sawDot else { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if segments.contains(where: { $0 == "." || $0 == ".." }) { return "dot segment" }
        return nil
    }

    /// A Responses WebSocket upgrade (§7.1 rule 4).
    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        (head.uri.hasPrefix("/v1/responses") || head.uri.hasPrefix("/backend-api/codex/responses"))
            && head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }
}

/// A short random id per inbound request, in every log line about it (§11).
enum RequestID {
    static func make() -> String {
        var random = CheapRandom()
        let value = UInt32.random(in: .min ... .max, using: &random)
        // Eight hex digits written in place (this runs for every request).
        return String(unsafeUninitializedCapacity: 8) { digits in
            for index in 0..<8 {
                let nibble = UInt8(truncatingIfNeeded: value >> (28 - 4 * UInt32(index))) & 0xF
                digits[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 8
        }
    }
}
