public import PoolCore

/// The validated configuration of one codexpool instance (balancer, connector or both).
public struct CodexpoolConfiguration: Hashable, Sendable {
    public var listen: ListenAddress
    /// Inbound TLS; nil serves plain HTTP.
    public var tls: InboundTLSConfiguration?
    public var upstream: UpstreamEndpoints
    /// Extra headers sent upstream; each replaces a same-named client header.
    public var upstreamHeaders: [UpstreamHeader]
    /// Never empty: with none configured, one local credential tagged `default`.
    public var credentials: [CredentialConfiguration]
    /// Empty means no authentication: everyone is served by the first credential.
    public var users: [UserConfiguration]
    public var logLevel: LogLevel
    public var metrics: MetricsConfiguration
    public var limits: ListenerLimits
    /// Serving everyone (no users) on a non-loopback address needs this opt-in.
    public var allowOpenAccess: Bool
    public var storage: StorageConfiguration
    /// `GET /v1/models` when no credential's catalog can be read (`models:`).
    public var fallbackModels: [String]
    public static let defaultModels = ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex"]

    public init(
        listen: ListenAddress = .default, tls: InboundTLSConfiguration? = nil, upstream: UpstreamEndpoints = .openAI,
        upstreamHeaders: [UpstreamHeader] = [], credentials: [CredentialConfiguration],
        users: [UserConfiguration] = [], logLevel: LogLevel = .info, metrics: MetricsConfiguration = MetricsConfiguration(),
        limits: ListenerLimits = ListenerLimits(), allowOpenAccess: Bool = false, storage: StorageConfiguration = .disabled,
        fallbackModels: [String] = CodexpoolConfiguration.defaultModels
    ) {
        self.listen = listen
        self.tls = tls
        self.upstream = upstream
        self.upstreamHeaders = upstreamHeaders
        self.credentials = credentials
        self.users = users
        self.logLevel = logLevel
        self.metrics = metrics
        self.limits = limits
        self.allowOpenAccess = allowOpenAccess
        self.storage = storage
        self.fallbackModels = fallbackModels
    }

    public func credential(tagged tag: String) -> CredentialConfiguration? {
        credentials.first { $0.tag == tag }
    }
}

/// Certificate and key for inbound TLS, as PEM files.
public struct InboundTLSConfiguration: Hashable, Sendable {
    /// The certificate chain, leaf first.
    public var certificatePath: String
    public var keyPath: String

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}

/// The OpenAI endpoints codexpool talks to; overridable so tests and the demo can point at the simulator.
public struct UpstreamEndpoints: Hashable, Sendable {
    /// Responses API for ChatGPT-account (OAuth) credentials; the client's leading `/v1` is replaced by it.
    public var baseURL: EndpointURL
    /// Responses API for API-key credentials; the client's path is appended unchanged.
    public var apiBaseURL: EndpointURL
    /// The usage (rate limit) API polled for each OAuth credential.
    public var usageURL: EndpointURL
    /// The OAuth token endpoint used to refresh access tokens.
    public var tokenURL: EndpointURL
    /// The OAuth issuer `codexpool login` signs accounts in with (authorize, device code, token).
    public var authURL: EndpointURL

    public init(baseURL: EndpointURL, apiBaseURL: EndpointURL, usageURL: EndpointURL, tokenURL: EndpointURL,
                authURL: EndpointURL = EndpointURL(parsing: "https://auth.openai.com")!) {
        self.baseURL = baseURL
        self.apiBaseURL = apiBaseURL
        self.usageURL = usageURL
        self.tokenURL = tokenURL
        self.authURL = authURL
    }

    // The literals are valid URLs; a failure here is a programming error caught by every test run.
    public static let openAI = UpstreamEndpoints(
        baseURL: EndpointURL(parsing: "https://chatgpt.com/backend-api/codex")!,
        apiBaseURL: EndpointURL(parsing: "https://api.openai.com")!,
        usageURL: EndpointURL(parsing: "https://chatgpt.com/backend-api/wham/usage")!,
        tokenURL: EndpointURL(parsing: "https://auth.openai.com/oauth/token")!
    )
}

/// One extra upstream header; a name may carry several values.
public struct UpstreamHeader: Hashable, Sendable {
    public var name: String
    public var values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

/// Log verbosity, from most to least detailed.
public enum LogLevel: String, Hashable, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// The Prometheus endpoint `GET /metrics`.
public struct MetricsConfiguration: Hashable, Sendable {
    /// Off: `/metrics` answers 404.
    public var enabled: Bool
    /// When set, scrapes must send `Authorization: Bearer <token>`; otherwise the endpoint is open
    /// (it carries credential tags and user names, never secrets).
    public var token: Secret?
    /// An open `/metrics` (no token) on a non-loopback address needs this opt-in.
    public var isPublic: Bool

    public init(enabled: Bool = true, token: Secret? = nil, isPublic: Bool = false) {
        self.enabled = enabled
        self.token = token
        self.isPublic = isPublic
    }
}
