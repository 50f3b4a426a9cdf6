import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP

/// How one credential reaches upstream: which origin, which path, which authorization.
enum CredentialBackend: Sendable {
    /// A local `auth.json`; tokens from the source, with a synchronous cache for the hot path.
    case local(LocalCredentialSource, GrantCache)
    /// Another instance reached over HTTP(S) with its bearer token.
    case forward(url: EndpointURL, target: UpstreamTarget, token: Secret)
    /// Another instance that dials in; served through its tunnel (not connected yet).
    case receiver(token: Secret)
}
