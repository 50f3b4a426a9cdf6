import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

extension GatewayRuntime {
    // MARK: Credential files

    /// Re-reads a local credential file and mirrors its availability into the pool.
    func reload(tag: String, source: LocalCredentialSource, initial: Bool = false) async {
        let outcome = initial ? await source.reload() : await source.reloadIfDue()
        guard let outcome else {
            // Not re-read, but the source may have changed its mind (a refresh token found dead).
            let availability = await source.availability
            let now = clock.now()
            return apply(withPool { $0.setAvailability(tag, availability, now: now) })
        }
        pollState.withLock { $0.lastReload[tag] = clock.now() }
        let availability = await source.availability
        let auth = await source.auth
        let planHint = auth?.planTypeHint
        let isAPIKey = auth?.isAPIKeyMode ?? false
        if case .unavailable(let message) = outcome {
            let verb = initial ? "initial credential load for" : "reload credentials for"
            logger.warning("\(verb) \(tag): \(message)")
        }
        if case .loaded(_, let accountChanged) = outcome, accountChanged, case .local(_, let cache) = backends[tag] { cache.invalidate() }
        var accountChanged = false
        if case .loaded(_, true) = outcome { accountChanged = true }
        let now = clock.now()
        apply(withPool {
            $0.credentialFileLoaded(tag, availability: availability, isAPIKey: isAPIKey, planHint: planHint, accountChanged: accountChanged, now: now)
        })
    }

    /// Before selecting for `provider`: re-reads unavailable local credential files that are due
    /// (every 2 s at most), so a file that appeared serves the very next request.
    func refreshUnavailableCredentials(provider: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let now = clock.now()
        let due: [(String, LocalCredentialSource)] = withPool { pool in
            pool.members(of: provider).compactMap { tag in
                guard case .unavailable = pool[tag]?.availability, case .local(let source, _) = backends[tag] else { return nil }
                return (tag, source)
            }
        }.filter { tag, _ in
            pollState.withLock { state in
                state.lastReload[tag].map { now.timeIntervalSince($0) >= PoolPolicy.credentialReloadInterval } ?? true
            }
        }
        guard !due.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask {
            for (tag, source) in due { await self.reload(tag: tag, source: source) }
        }
        return promise.futureResult
    }

    // MARK: Usage polling

    /// Polls a local credential's usage API in the background when its data is stale; at most
    /// one poll per credential at a time. Requests never wait for it (Appendix A #11).
    func pollIfStale(_ tag: String) {
        guard let backend = backends[tag] else { return }
        let now = clock.now()
        let due = withPool { pool -> Bool in
            guard let state = pool[tag], case .available = state.availability, !state.isAPIKey else { return false }
            return now >= state.usage.nextPollAt(interval: PoolPolicy.usagePollInterval)
        }
        guard due, pollState.withLock({ $0.inFlight.insert(tag).inserted }) else { return }
        Task {
            defer { _ = pollState.withLock { $0.inFlight.remove(tag) } }
            switch backend {
            case .local(let source, _): await poll(tag, source: source)
            case .forward, .receiver: await pollPeer(tag)
            }
        }
    }

    private func poll(_ tag: String, source: LocalCredentialSource) async {
        let usageURL = configuration.upstream.usageURL
        let outcome: Result<UpstreamClient.CollectedResponse, any Error>
        do {
            let grant = try await source.accessGrant()
            var headers = HTTPHeaders()
            headers.add(name: "authorization", value: "Bearer \(grant.token.value)")
            if let account = grant.accountID { headers.add(name: "chatgpt-account-id", value: account) }
            headers.add(name: "accept", value: "application/json")
            let eventLoop = eventLoopGroup.next()
            outcome = .success(try await upstream.collect(usageURL.target(tls: upstreamTLSContext), method: .GET, path: usageURL.path,
                                                          headers: headers, on: eventLoop).get())
        } catch {
            outcome = .failure(error)
        }
        let now = clock.now()
        let change: (inout CredentialPool) -> PoolEvents
        switch outcome {
        case .success(let response) where response.status == 200:
            do {
                let snapshot = try RateLimitSnapshot(usageResponse: Data(response.body), now: now)
                change = { $0.usagePollAnswered(tag, snapshot: snapshot, now: now) }
            } catch {
                logger.warning("poll usage for \(tag): unreadable answer: \(error)")
                change = { $0.usagePollFailed(tag, reason: "unreadable usage answer", now: now) }
            }
        case .success(let response) where response.status == 429:
            let retryAfter = response.headers.first(name: "retry-after").flatMap(RateLimitRejection.parseRetryAfter)
            logger.warning("poll usage for \(tag): usage API rate limited, retry in \(DurationText.interval(retryAfter ?? PoolPolicy.usageAPIRetryDefault))")
            change = { $0.usageAPIRateLimited(tag, retryAfter: retryAfter, now: now) }
        case .success(let response):
            logger.warning("poll usage for \(tag): HTTP \(response.status)")
            change = { $0.usagePollFailed(tag, reason: "usage API answered HTTP \(response.status)", now: now) }
        case .failure(let error):
            logger.warning("poll usage for \(tag): \(error)")
            change = { $0.usagePollFailed(tag, reason: "\(error)", now: now) }
        }
        apply(withPool(change))
    }

    // MARK: Upstream requests

    /// Builds the upstream request for `tag` (§7.3 step 8): the client's headers minus the
    /// stripped sets, the service headers, and this credential's authorization.
    func plan(for tag: String, method: HTTPMethod, uri: String, clientHeaders: HTTPHeaders, bodyLength: Int?, webSocket: Bool,
              rejectedToken: Secret? = nil, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRequestPlan> {
        guard let backend = backends[tag] else {
            return eventLoop.makeFailedFuture(CredentialAccessError.unavailable("no credential tagged \(tag)"))
        }
        var headers = HeaderHygiene.forwardableRequestHeaders(clientHeaders)
        // Taps must read bodies: ask upstream for identity encoding (Appendix A #6).
        headers.remove(name: "accept-encoding")
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
            let endpoints = configuration.upstream
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
                    cache.store(grant, auth: await source.auth, now: self.clock.now())
                    return build(grant)
                } catch {
                    cache.invalidate()
                    await self.reload(tag: tag, source: source)
                    throw error
                }
            }
            return promise.futureResult
        }
    }

    private func applyServiceHeaders(_ headers: inout HTTPHeaders) {
        for header in configuration.upstreamHeaders {
            headers.remove(name: header.name)
            for value in header.values { headers.add(name: header.name, value: value) }
        }
    }
}

/// The OAuth refresh POST over the gateway's upstream client.
struct HTTPTokenRefresher: TokenRefresher {
    let client: UpstreamClient
    let group: any EventLoopGroup
    let url: EndpointURL
    let target: UpstreamTarget

    func postTokenRequest(body: Data) async throws -> TokenEndpointResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "accept", value: "application/json")
        let response = try await client.collect(target, method: .POST, path: url.path.isEmpty ? "/" : url.path, headers: headers,
                                                body: Array(body), on: group.next()).get()
        return TokenEndpointResponse(status: response.status, headers: response.headers.map { ($0.name, $0.value) }, body: Data(response.body))
    }
}
