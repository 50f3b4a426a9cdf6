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
        var accountChanged = false
        if case .loaded(_, true) = outcome { accountChanged = true }
        if accountChanged, case .local(_, let cache) = backend(tag) { cache.invalidate() }
        let now = clock.now()
        apply(withPool {
            $0.credentialFileLoaded(tag, availability: availability, isAPIKey: isAPIKey, planHint: planHint, accountChanged: accountChanged, now: now)
        })
    }

    /// Before selecting for `provider`: re-reads unavailable local credential files that are due
    /// (every 2 s at most), so a file that appeared serves the very next request. Nil when none
    /// is due (nothing to wait for).
    func refreshUnavailableCredentials(provider: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void>? {
        let now = clock.now()
        var unavailable: [String] = []
        withPool { pool in
            pool.forEachMember(of: provider) { credential in
                if case .unavailable = credential.availability { unavailable.append(credential.tag) }
            }
        }
        // Almost always nothing is: no arrays, no backend lookups then (this runs for every request).
        guard !unavailable.isEmpty else { return nil }
        let due: [(String, LocalCredentialSource)] = unavailable.compactMap { tag in
            guard case .local(let source, _) = backend(tag) else { return nil }
            return (tag, source)
        }.filter { tag, _ in
            pollState.withLock { state in
                state.lastReload[tag].map { now.timeIntervalSince($0) >= PoolPolicy.credentialReloadInterval } ?? true
            }
        }
        guard !due.isEmpty else { return nil }
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask {
            for (tag, source) in due { await self.reload(tag: tag, source: source) }
        }
        return promise.futureResult
    }

    /// Mirrors whether the credential's rotated token is saved; the first time it is not, the
    /// operator hears of it at error level (the token works until a restart, then it is lost).
    func syncTokenPersistence(tag: String, source: LocalCredentialSource) async {
        let unsavedSince = await source.unsavedTokenSince
        let problem = await source.lastPersistError
        let previously = withPool { $0[tag]?.unsavedTokenSince }
        guard previously != unsavedSince else { return }
        if unsavedSince != nil {
            let retry = Int(LocalCredentialSource.unsavedRetryInterval)
            logger.error("""
                credential \(tag): a refreshed token could not be saved and is kept in memory only; retrying every \(retry) s — \
                fix the file's folder before a restart: \(problem ?? "write failed")
                """)
        } else {
            logger.notice("credential \(tag): the refreshed token is saved now")
        }
        let now = clock.now()
        apply(withPool { $0.tokenPersistence(tag, unsavedSince: unsavedSince, now: now) })
    }
}
