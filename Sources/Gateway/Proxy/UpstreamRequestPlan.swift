public import Configuration
import Foundation
import NIOCore
import NIOHTTP1
public import OpenSSLTLS
import PoolCore
import Synchronization
public import UpstreamHTTP

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
    /// The credential is another instance's (a peer answers, not the backend): kept here so the
    /// answer's handling need not look the credential up again.
    var viaPeer = false
    /// The request body as it goes to this credential, when it differs from the client's
    /// (another account's continuation state left out).
    var body: ByteBuffer?
}

extension UpstreamEndpoints {
    /// The upstream path for a client path under `/v1/…`: the OAuth base replaces `/v1`
    /// (`/v1/responses` → `/backend-api/codex/responses`); API keys keep it.
    func path(forClientURI uri: String, isAPIKey: Bool) -> (EndpointURL, String) {
        if isAPIKey { return (apiBaseURL, apiBaseURL.path + uri) }
        // Joined in one string (no intermediate one for the rest of the path: this runs for every request).
        let rest = uri.hasPrefix("/v1/") ? uri.dropFirst(3) : (uri == "/v1" ? "" : uri[...])
        var path = baseURL.path
        path += rest
        return (baseURL, path)
    }
}

extension EndpointURL {
    /// The pool key and TLS settings for this URL's origin.
    public func target(tls: OpenSSLContext?, dialHost: String? = nil, dialPort: Int? = nil, serverName: String? = nil) -> UpstreamTarget {
        UpstreamTarget(host: dialHost ?? host, port: dialPort ?? port, tls: usesTLS ? tls : nil,
                       serverName: serverName ?? host, hostHeader: hostHeader)
    }
}
