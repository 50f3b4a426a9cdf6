public import Configuration
import Foundation
import NIOCore
import NIOHTTP1
public import OpenSSLTLS
import PoolCore
import Synchronization
public import UpstreamHTTP

/// How one credential reaches upstream: which origin, which path, which authorization.
enum CredentialBackend: Sendable {
    /// A local `auth.json`; tokens from the source, with a synchronous cache for the hot path.
    case local(LocalCredentialSource, GrantCache)
    /// Another instance reached over HTTP(S) with its bearer token.
    case forward(url: EndpointURL, target: UpstreamTarget, token: Secret)
    /// Another instance that dials in; served through its tunnel (not connected yet).
    case receiver(token: Secret)
}

/// The last access grant of a local credential and until when it may be reused without asking
/// the credential source, so a request does not pay an actor hop for a token it already has.
final class GrantCache: Sendable {
    private let entry = Mutex<(grant: AccessGrant, validUntil: Date)?>(nil)

    func grant(now: Date) -> AccessGrant? {
        entry.withLock { entry in
            guard let entry, now < entry.validUntil else { return nil }
            return entry.grant
        }
    }

    func store(_ grant: AccessGrant, auth: CodexAuthFile?, now: Date) {
        // Reuse until the token would need a refresh anyway (the same margin the file uses), and
        // re-ask regularly so a file the official CLI rewrote is picked up.
        var validUntil = now.addingTimeInterval(PoolPolicy.grantRecheckInterval)
        if let expiry = auth?.accessTokenExpiry { validUntil = min(validUntil, expiry.addingTimeInterval(-PoolPolicy.tokenRefreshMargin)) }
        if let lastRefresh = auth?.lastRefresh { validUntil = min(validUntil, lastRefresh.addingTimeInterval(CodexAuthFile.refreshAge)) }
        entry.withLock { $0 = (grant, validUntil) }
    }

    func invalidate() {
        entry.withLock { $0 = nil }
    }
}

/// The upstream side of one proxied request: where it goes and with which headers.
struct UpstreamRequestPlan: Sendable {
    var target: UpstreamTarget
    /// Path and query as sent upstream.
    var uri: String
    var headers: HTTPHeaders
    /// The token used, so a 401 can ask for a refresh of exactly this one.
    var grantToken: Secret?
    /// Sent through this credential's reverse tunnel instead of dialling `target`.
    var tunnelTag: String?
}

extension UpstreamEndpoints {
    /// The upstream path for a client path under `/v1/…`: the OAuth base replaces `/v1`
    /// (`/v1/responses` → `/backend-api/codex/responses`); API keys keep it.
    func path(forClientURI uri: String, isAPIKey: Bool) -> (EndpointURL, String) {
        if isAPIKey { return (apiBaseURL, apiBaseURL.path + uri) }
        let rest = uri.hasPrefix("/v1/") ? String(uri.dropFirst(3)) : (uri == "/v1" ? "" : uri)
        return (baseURL, baseURL.path + rest)
    }
}

extension EndpointURL {
    /// The pool key and TLS settings for this URL's origin.
    public func target(tls: OpenSSLContext?, dialHost: String? = nil, dialPort: Int? = nil, serverName: String? = nil) -> UpstreamTarget {
        UpstreamTarget(host: dialHost ?? host, port: dialPort ?? port, tls: usesTLS ? tls : nil,
                       serverName: serverName ?? host, hostHeader: hostHeader)
    }
}
