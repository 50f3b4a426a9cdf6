public import PoolCore

/// One entry of `credentials:`, as the rest of the program uses it.
public enum CredentialConfiguration: Hashable, Sendable {
    /// A Codex `auth.json` on this machine (`type: default`).
    case local(LocalCredentialConfiguration)
    /// Another codexpool or sing-box instance (`type: external`).
    case external(ExternalCredentialConfiguration)
    /// A pool over local and external credentials (`type: balancer`).
    case balancer(BalancerConfiguration)

    public var tag: String {
        switch self {
        case .local(let local): local.tag
        case .external(let external): external.tag
        case .balancer(let balancer): balancer.tag
        }
    }

    /// The word used for this kind in the file and in messages.
    public var typeName: String {
        switch self {
        case .local: "default"
        case .external: "external"
        case .balancer: "balancer"
        }
    }
}

/// A local Codex credential file.
public struct LocalCredentialConfiguration: Hashable, Sendable {
    public var tag: String
    /// Absolute path of the `auth.json`; it may not exist yet.
    public var credentialPath: String
    /// Where usage statistics are written; nil turns statistics off.
    public var usagesPath: String?
    public var caps: UsageCaps
    /// May serve `/v1/images/…` (`images:`).
    public var images: Bool
    /// Image requests at once on this account (`image_concurrency:`); more wait briefly, then get 429.
    public var imageConcurrency: Int
    public static let defaultImageConcurrency = 3

    public init(tag: String, credentialPath: String, usagesPath: String? = nil, caps: UsageCaps = UsageCaps(), images: Bool = true,
                imageConcurrency: Int = LocalCredentialConfiguration.defaultImageConcurrency) {
        self.tag = tag
        self.credentialPath = credentialPath
        self.usagesPath = usagesPath
        self.caps = caps
        self.images = images
        self.imageConcurrency = imageConcurrency
    }
}

/// Another instance whose pool this one may use.
public struct ExternalCredentialConfiguration: Hashable, Sendable {
    /// How traffic reaches the other instance.
    public enum Mode: Hashable, Sendable {
        /// Plain forwarding: requests go to `url` over HTTP(S).
        case forward(EndpointURL)
        /// The other instance dials in (`reverse: true`, no url); usable while its tunnel is up.
        case receiver
        /// This instance dials `url` and serves the other's requests over the tunnel
        /// (`reverse: true` with url).
        case connector(EndpointURL)
    }

    public var tag: String
    /// Sent as the bearer token to the other instance; also the tunnel's shared secret.
    public var token: Secret
    public var mode: Mode
    /// Dial this host and port instead of the URL's (the URL host stays the TLS name).
    public var dialHost: String?
    public var dialPort: Int?
    public var usagesPath: String?
    /// How to verify the other instance's certificate (https URLs only).
    public var tls: PeerTLSConfiguration

    public init(
        tag: String, token: Secret, mode: Mode, dialHost: String? = nil, dialPort: Int? = nil,
        usagesPath: String? = nil, tls: PeerTLSConfiguration = PeerTLSConfiguration()
    ) {
        self.tag = tag
        self.token = token
        self.mode = mode
        self.dialHost = dialHost
        self.dialPort = dialPort
        self.usagesPath = usagesPath
        self.tls = tls
    }

    /// The URL of the other instance, when this side knows it.
    public var url: EndpointURL? {
        switch mode {
        case .forward(let url), .connector(let url): url
        case .receiver: nil
        }
    }
}

/// Certificate checks toward another instance.
public struct PeerTLSConfiguration: Hashable, Sendable {
    /// A PEM file of trusted CA certificates; nil means the system store.
    public var caPath: String?
    /// Name to send as SNI and to verify, when it differs from the URL host.
    public var serverName: String?
    /// Accepted SHA-256 digests of the server's SubjectPublicKeyInfo (32 bytes each).
    public var pinnedPublicKeySHA256: [[UInt8]]
    /// Skip verification entirely (logged as a warning at start).
    public var insecureSkipVerification: Bool

    public init(
        caPath: String? = nil, serverName: String? = nil,
        pinnedPublicKeySHA256: [[UInt8]] = [], insecureSkipVerification: Bool = false
    ) {
        self.caPath = caPath
        self.serverName = serverName
        self.pinnedPublicKeySHA256 = pinnedPublicKeySHA256
        self.insecureSkipVerification = insecureSkipVerification
    }
}

/// A pool that picks one member credential per session: the pool's own definition, used as is.
public typealias BalancerConfiguration = BalancerDefinition
