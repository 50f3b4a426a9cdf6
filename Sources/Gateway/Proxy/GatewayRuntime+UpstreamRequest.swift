import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

extension GatewayRuntime {
    /// Builds the upstream request for `tag` (§7.3 step 8): the client's headers minus the
    /// stripped sets, the service headers, and this credential's authorization.
    func plan(for tag: String, method: HTTPMethod, uri: String, clientHeaders: HTTPHeaders, bodyLength: Int?, webSocket: Bool,
              rejectedToken: Secret? = nil, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRequestPlan> {
        guard let backend = backend(tag) else {
            return eventLoop.makeFailedFuture(CredentialAccessError.unavailable("no credential tagged \(tag)"))
        }
        var headers = HeaderHygiene.forwardableRequestHeaders(clientHeaders)
        // Taps must read bodies: ask upstream for identity encoding (Appendix A #6).
        headers.remove(name: "accept-encoding")
        // A CLI in ChatGPT mode sends the account id codexpool gave its user; upstream gets the credential's.
        headers.remove(name: "chatgpt-account-id")
        headers.remove(name: "content-length")
        if webSocket {
            for (name, _) in headers where name.lowercased().hasPrefix("sec-websocket-") { headers.remove(name: name) }
        }
        if let bodyLength, method != .GET, method != .HEAD { headers.replaceOrAdd(name: "content-length", value: String(bodyLength)) }

        // Another instance: through its reverse session when one is connected, which is
        // preferred for everything (§5.1), else over its URL.
        let tunnelUp = reverseTunnels.session(for: tag) != nil
        func peerPlan(target: UpstreamTarget, uri: String, token: Secret) -> EventLoopFuture<UpstreamRequestPlan> {
            if webSocket { applyServiceHeaders(&headers) }
            headers.replaceOrAdd(name: "host", value: target.hostHeader)
            headers.replaceOrAdd(name: "authorization", value: "Bearer \(token.value)")
            return eventLoop.makeSucceededFuture(UpstreamRequestPlan(target: target, uri: uri, headers: headers, grantToken: nil, tunnelTag: tunnelUp ? tag : nil))
        }
        switch backend {
        case .forward(let url, let target, let token):
            return tunnelUp ? peerPlan(target: .reverseProxy, uri: uri, token: token) : peerPlan(target: target, uri: url.path + uri, token: token)
        case .receiver(let token):
            guard tunnelUp else { return eventLoop.makeFailedFuture(CredentialAccessError.unavailable("connector for \(tag) is offline")) }
            return peerPlan(target: .reverseProxy, uri: uri, token: token)
        case .local(let source, let cache):
            let upstreamTLS = upstreamTLSContext
            let endpoints = upstreamEndpoints
            applyServiceHeaders(&headers)
            let baseHeaders = headers
            let build = { @Sendable (grant: AccessGrant) -> UpstreamRequestPlan in
                let (base, path) = endpoints.path(forClientURI: uri, isAPIKey: grant.isAPIKey)
                let target = base.target(tls: upstreamTLS)
                var headers = baseHeaders
                headers.replaceOrAdd(name: "host", value: target.hostHeader)
                headers.replaceOrAdd(name: "authorization", value: "Bearer \(grant.token.value)")
                if let account = grant.accountID { headers.replaceOrAdd(name: "chatgpt-account-id", value: account) }
                return UpstreamRequestPlan(target: target, uri: path, headers: headers, grantToken: grant.token)
            }
            let now = clock.now()
            if rejectedToken == nil, let grant = cache.grant(now: now) { return eventLoop.makeSucceededFuture(build(grant)) }
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
            return promise.futureResult
        }
    }

    private func applyServiceHeaders(_ headers: inout HTTPHeaders) {
        for header in upstreamHeaders {
            headers.remove(name: header.name)
            for value in header.values { headers.add(name: header.name, value: value) }
        }
    }
}
