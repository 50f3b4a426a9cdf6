import Configuration
import Foundation
import Logging
import PoolCore
import Synchronization

extension GatewayRuntime {
    /// The roster a new configuration needs, built beside the running one (nothing changes yet);
    /// throws when part of it cannot be used as written (a peer's TLS files).
    func prepareRoster(for configuration: CodexpoolConfiguration) throws(GatewayStartupError) -> CredentialRoster {
        try CredentialRoster(configuration, reusing: generation.withLock { $0.roster }, context: rosterContext)
    }

    /// Puts a new configuration and its roster in force. Nothing open is cut: requests and
    /// WebSocket sessions on a removed credential finish there, the tunnel of a removed receiver
    /// drains (GoAway, then closes after its last stream), sessions authenticated with a
    /// changed token carry on; new work sees only the new state.
    func commit(_ configuration: CodexpoolConfiguration, roster: CredentialRoster) async {
        // Both under the pool's lock (then the generation's, the order everywhere): no selection sees
        // a credential the roster does not have.
        let (previous, events) = withPool { pool in
            let previous = generation.withLock { generation in
                var next = Generation(configuration: configuration, roster: roster)
                // A request that picked a removed credential just before still finds its way there.
                next.retired = generation.retired.merging(generation.roster.backends) { $1 }.filter { roster.backends[$0.key] == nil }
                defer { generation = next }
                return generation.roster
            }
            return (previous, pool.reconfigure(credentials: roster.states, balancers: roster.balancers, replaced: roster.replaced).1)
        }
        reverseTunnels.replaceTokens(roster.reverseTokens)
        apply(events)
        for (tag, watcher) in previous.peerWatchers where roster.peerWatchers[tag] !== watcher { watcher.stop() }
        for (tag, recorder) in previous.recorders where roster.recorders[tag] !== recorder { await recorder.flush() }
        for (tag, backend) in previous.backends {
            guard case .receiver = backend, !(roster.backends[tag]?.isReceiver ?? false) else { continue }
            reverseTunnels.drain(tag)
        }
        // Credentials an operator disabled before stay disabled when they come back.
        await restoreAdminState()
        await bringUp(roster, after: previous)
    }

    /// Starts what `roster` has that `previous` had not (everything at start): usage recorders
    /// load, credential files are read, peers are asked for their status.
    func bringUp(_ roster: CredentialRoster, after previous: CredentialRoster?) async {
        for (tag, recorder) in roster.recorders where previous?.recorders[tag] !== recorder {
            if let warning = await recorder.load() { logger.warning("\(warning)", metadata: ["credential": "\(tag)"]) }
        }
        let fresh = roster.backends.filter { tag, backend in !(previous?.backends[tag]?.isSame(as: backend) ?? false) }
        for (tag, backend) in fresh {
            guard case .local(let source, _) = backend else { continue }
            await reload(tag: tag, source: source, initial: true)
        }
        for (tag, backend) in fresh {
            // A connector-mode peer is the receiver we serve; asked about only when a user is sent there.
            if case .forward = backend, roster.peerWatchers[tag] == nil { continue }
            pollIfStale(tag)
        }
        // Receivers start theirs when the connector attaches.
        for (tag, watcher) in roster.peerWatchers where previous?.peerWatchers[tag] !== watcher {
            if case .forward = roster.backends[tag] { watcher.restart(runtime: self) }
        }
    }
}

extension CredentialBackend {
    var isReceiver: Bool {
        if case .receiver = self { true } else { false }
    }

    /// The same running backend (kept by a reload), not merely an equal description.
    func isSame(as other: CredentialBackend) -> Bool {
        switch (self, other) {
        case (.local(let source, _), .local(let otherSource, _)): source === otherSource
        case (.forward(let url, _, let token), .forward(let otherURL, _, let otherToken)): url == otherURL && token == otherToken
        case (.receiver, .receiver): true
        default: false
        }
    }
}
