import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

extension GatewayRuntime {
    /// Polls a local credential's usage API in the background when its data is stale; at most
    /// one poll per credential at a time. Requests never wait for it (Appendix A #11).
    func pollIfStale(_ tag: String) {
        pollIfStale(tag, backend: backend(tag))
    }

    /// The same, with `tag`'s backend looked up already.
    func pollIfStale(_ tag: String, backend: CredentialBackend?) {
        guard let backend else { return }
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
        let usageURL = upstreamEndpoints.usageURL
        let outcome: Result<UpstreamClient.CollectedResponse, any Error>
        do {
            let grant = try await source.accessGrant()
            await syncTokenPersistence(tag: tag, source: source)
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
}
