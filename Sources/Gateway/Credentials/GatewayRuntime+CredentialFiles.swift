import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

extension GatewayRuntime {
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
}
