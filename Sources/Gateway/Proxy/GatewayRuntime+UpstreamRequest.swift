import Configuration
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP

extension GatewayRuntime {
    /// Builds the upstream request for `tag` (§7.3 step 8): the client's headers minus the
    /// stripped sets, the service headers, and this credential's authorization.
    func plan(for tag: String, method: HTTPMethod, uri: String, clientHeaders: HTTPHeaders, bodyLength: Int?, webSocket: Bool,
              rejectedToken: Secret? = nil, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRequestPlan> {
        switch planNow(for: tag, method: method, uri: uri, clientHeaders: clientHeaders, bodyLength: bodyLength, webSocket: webSocket,
                       rejectedToken: rejectedToken, on: eventLoop) {
        case .ready(let plan): eventLoop.makeSucceededFuture(plan)
        case .failed(let error): eventLoop.makeFailedFuture(error)
        case .pending(let future): future
        }
    }

    /// A plan, or a failure, at once when no token has to be fetched first (the usual case:
    /// no future is made for it).
    enum PlanResult {
        case ready(UpstreamRequestPlan)
        case failed(any Error)
        case pending(EventLoopFuture<UpstreamRequestPlan>)
    }

    /// The same, answered at once when it can be. `knownBackend` is `tag`'s when the caller has
    /// looked it up already.
    func planNow(for tag: String, backend knownBackend: CredentialBackend? = nil, method: HTTPMethod, uri: String, clientHeaders: HTTPHeaders,
                 bodyLength: Int?, webSocket: Bool, rejectedToken: Secret? = nil, on eventLoop: any EventLoop) -> PlanResult {
        guard let backend = knownBackend ?? backend(tag) else { return .failed(CredentialAccessError.unavailable("no credential tagged \(tag)")) }
        // The service headers go to the backend, and to a peer only on a WebSocket (a peer adds its own to HTTP requests).
        var isLocal = false
        if case .local = backend { isLocal = true }
        let service = isLocal || webSocket ? upstreamHeaders : []
        let serviceNames = service.isEmpty ? nil : HTTPHeaderNameSet(service.map(\.name))
        // One pass over the client's headers, without those codexpool sets itself: taps must read bodies, so upstream is
        // asked for identity encoding (Appendix A #6); a CLI in ChatGPT mode sends the account id codexpool gave its
        // user, and upstream gets the credential's.
        var headers = HeaderHygiene.forwardableRequestFields(clientHeaders, reservingMore: 4 + service.count) { name in
            Self.setUpstream.contains(name) || (webSocket && HTTPToken.name(name, hasPrefix: "sec-websocket-"))
                || serviceNames?.contains(name) == true
        }
        if let bodyLength, method != .GET, method != .HEAD { headers.append(("content-length", String(bodyLength))) }
        for header in service {
            let lowered = header.name.lowercased()
            headers.removeAll { $0.0.lowercased() == lowered }
            for value in header.values { headers.append((header.name, value)) }
        }
        // Only service headers can have put these in already; the credential's values replace theirs.
        let replacing = !service.isEmpty

        // Another instance: through its reverse session when one is connected, which is
        // preferred for everything (§5.1), else over its URL.
        let tunnelUp = reverseTunnels.session(for: tag) != nil
        func peerPlan(target: UpstreamTarget, uri: String, token: Secret) -> PlanResult {
            var fields = headers
            Self.set(&fields, "host", target.hostHeader, replacing: replacing)
            Self.set(&fields, "authorization", "Bearer \(token.value)", replacing: replacing)
            return .ready(UpstreamRequestPlan(target: target, uri: uri, headers: HTTPHeaders(fields), grantToken: nil, tunnelTag: tunnelUp ? tag : nil,
                                              viaPeer: true))
        }
        switch backend {
        case .forward(let url, let target, let token):
            return tunnelUp ? peerPlan(target: .reverseProxy, uri: uri, token: token) : peerPlan(target: target, uri: url.path + uri, token: token)
        case .receiver(let token):
            guard tunnelUp else { return .failed(CredentialAccessError.unavailable("connector for \(tag) is offline")) }
            return peerPlan(target: .reverseProxy, uri: uri, token: token)
        case .local(let source, let cache):
            let upstreamTLS = upstreamTLSContext
            let endpoints = upstreamEndpoints
            let now = clock.now()
            // A cached token (the usual case) builds the plan at once, without a closure made for the case below.
            if rejectedToken == nil, let grant = cache.grant(now: now) {
                return .ready(Self.localPlan(grant, uri: uri, headers: headers, replacing: replacing, endpoints: endpoints, tls: upstreamTLS))
            }
            let baseHeaders = headers
            let build = { @Sendable (grant: AccessGrant) -> UpstreamRequestPlan in
                Self.localPlan(grant, uri: uri, headers: baseHeaders, replacing: replacing, endpoints: endpoints, tls: upstreamTLS)
            }
            let promise = eventLoop.makePromise(of: UpstreamRequestPlan.self)
            promise.completeWithTask {
                do {
                    let grant = try await source.accessGrant(rejectedAccessToken: rejectedToken)
                    await self.syncTokenPersistence(tag: tag, source: source)
                    cache.store(grant, auth: await source.auth, now: self.clock.now())
                    return build(grant)
                } catch {
                    await self.syncTokenPersistence(tag: tag, source: source)
                    cache.invalidate()
                    await self.reload(tag: tag, source: source)
                    throw error
                }
            }
            return .pending(promise.futureResult)
        }
    }

    /// The plan for a local credential's access grant: its base URL, its token and account.
    private static func localPlan(_ grant: AccessGrant, uri: String, headers fields: consuming [(String, String)], replacing: Bool,
                                  endpoints: UpstreamEndpoints, tls: OpenSSLContext?) -> UpstreamRequestPlan {
        let (base, path) = endpoints.path(forClientURI: uri, isAPIKey: grant.isAPIKey)
        let target = base.target(tls: tls)
        set(&fields, "host", target.hostHeader, replacing: replacing)
        set(&fields, "authorization", grant.authorization.value, replacing: replacing)
        if let account = grant.accountID { set(&fields, "chatgpt-account-id", account, replacing: replacing) }
        return UpstreamRequestPlan(target: target, uri: path, headers: HTTPHeaders(fields), grantToken: grant.token)
    }

    /// `name` is a lower-case literal: a literal's string is never copied, where a `StaticString`'s
    /// description would be once per request.
    private static func set(_ fields: inout [(String, String)], _ name: String, _ value: String, replacing: Bool) {
        // Only service headers can have put the name there already (rare).
        if replacing { fields.removeAll { $0.0.lowercased() == name } }
        fields.append((name, value))
    }

    /// Client headers the upstream request gets from codexpool instead (host and authorization
    /// are never forwarded anyway).
    private static let setUpstream = HTTPHeaderNameSet(["accept-encoding", "chatgpt-account-id", "content-length"])
}
