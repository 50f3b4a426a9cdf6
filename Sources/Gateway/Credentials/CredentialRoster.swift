import Configuration
import Foundation
import Logging
import OpenSSLTLS
import PoolCore
import UpstreamHTTP

/// The credentials of one configuration as the gateway serves them: how each reaches upstream,
/// its usage recorder, its peer's status watcher, and the tokens connectors dial in with.
/// Immutable: a reload builds the next roster, reusing the parts of credentials that did not
/// change so that their tokens, caches and tunnels carry on.
struct CredentialRoster: Sendable {
    var configurations: [String: CredentialConfiguration] = [:]
    var backends: [String: CredentialBackend] = [:]
    var recorders: [String: UsageRecorder] = [:]
    /// The status streams of external credentials that are not in connector mode (§5.5).
    var peerWatchers: [String: PeerStatusWatcher] = [:]
    /// Receiver and forwarding credentials' tokens, for the reverse handshake.
    var reverseTokens: [(tag: String, token: Secret)] = []
    /// A fresh pool state per credential (the pool keeps what it knows of existing ones).
    var states: [CredentialState] = []
    var balancers: [BalancerDefinition] = []
    /// Credentials whose file or peer changed under the same tag: what was learned about the old one is dropped.
    var replaced: Set<String> = []

    /// What building a roster needs from the runtime.
    struct Context: Sendable {
        var fileStore: any CredentialFileStore
        var refresher: any TokenRefresher
        var clock: any PoolClock
        var upstreamTLS: OpenSSLContext?
        var logger: Logger
    }

    init() {}

    /// - Parameter previous: the roster being replaced; entries of unchanged credentials are kept.
    init(_ configuration: CodexpoolConfiguration, reusing previous: CredentialRoster?, context: Context) throws(GatewayStartupError) {
        for credential in configuration.credentials {
            let tag = credential.tag
            configurations[tag] = credential
            let before = previous?.configurations[tag]
            let unchanged = before == credential
            switch credential {
            case .local(let local):
                if unchanged, let backend = previous?.backends[tag] {
                    backends[tag] = backend
                } else {
                    let source = LocalCredentialSource(tag: tag, path: local.credentialPath, store: context.fileStore, refresher: context.refresher,
                                                       clock: context.clock)
                    backends[tag] = .local(source, GrantCache())
                    if case .local(let old) = before, old.credentialPath != local.credentialPath { replaced.insert(tag) }
                }
                states.append(CredentialState(tag: tag, kind: .local, caps: local.caps,
                                              availability: .unavailable(UnavailableReason("credential file \(local.credentialPath) not loaded yet"))))
                addRecorder(tag, path: local.usagesPath, previous: previous, before: before, context: context)
            case .external(let external):
                switch external.mode {
                case .forward(let url), .connector(let url):
                    if case .forward = external.mode {
                        reverseTokens.append((tag, external.token))
                        peerWatchers[tag] = unchanged ? previous?.peerWatchers[tag] ?? PeerStatusWatcher(tag: tag) : PeerStatusWatcher(tag: tag)
                    }
                    if unchanged, let backend = previous?.backends[tag] {
                        backends[tag] = backend
                    } else {
                        let peerTLS = try Self.peerTLSContext(external.tls, logger: context.logger, tag: tag) ?? context.upstreamTLS
                        let target = url.target(tls: peerTLS, dialHost: external.dialHost, dialPort: external.dialPort, serverName: external.tls.serverName)
                        backends[tag] = .forward(url: url, target: target, token: external.token)
                        if before != nil { replaced.insert(tag) }
                    }
                    states.append(CredentialState(tag: tag, kind: .externalForward))
                case .receiver:
                    reverseTokens.append((tag, external.token))
                    // A changed token takes effect for the next handshake; the tunnel up now stays.
                    let wasReceiver = if case .external(let old) = before, case .receiver = old.mode { true } else { false }
                    peerWatchers[tag] = (wasReceiver ? previous?.peerWatchers[tag] : nil) ?? PeerStatusWatcher(tag: tag)
                    backends[tag] = .receiver(token: external.token)
                    states.append(CredentialState(tag: tag, kind: .externalReceiver,
                                                  availability: .unavailable(UnavailableReason("connector offline", since: context.clock.now()))))
                }
                addRecorder(tag, path: external.usagesPath, previous: previous, before: before, context: context)
            case .balancer(let balancer):
                balancers.append(balancer)
            }
        }
    }

    /// A usage recorder for `path`, the existing one when the credential keeps its file.
    private mutating func addRecorder(_ tag: String, path: String?, previous: CredentialRoster?, before: CredentialConfiguration?, context: Context) {
        guard let path else { return }
        if let existing = previous?.recorders[tag], before?.usagesPath == path {
            recorders[tag] = existing
        } else {
            recorders[tag] = UsageRecorder(path: path, store: context.fileStore, clock: context.clock)
        }
    }

    /// A peer's own TLS settings; a file or pin that does not load stops start-up (or the
    /// reload) — no silent fallback to the system trust store.
    private static func peerTLSContext(_ tls: PeerTLSConfiguration, logger: Logger, tag: String) throws(GatewayStartupError) -> OpenSSLContext? {
        if tls.insecureSkipVerification { logger.warning("TLS verification is OFF for \(tag) (tls.insecure: true)") }
        do {
            return try TLSPreflight.peerContext(tls)
        } catch {
            throw GatewayStartupError(description: "credential \(tag): tls: \(error)")
        }
    }
}

extension CredentialConfiguration {
    var usagesPath: String? {
        switch self {
        case .local(let local): local.usagesPath
        case .external(let external): external.usagesPath
        case .balancer: nil
        }
    }
}
