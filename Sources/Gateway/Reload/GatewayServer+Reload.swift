public import Configuration
import Logging
import NIOCore
import OpenSSLTLS
import Synchronization

/// Applying a new configuration to a running instance (SIGHUP, `POST /api/v1/reload`): the
/// whole new state is built and checked beside the running one, then put in force at once — or,
/// when anything in it cannot be used, nothing changes.
extension GatewayServer {
    /// Lets `POST /api/v1/reload` (and `codexpool reload`) re-read `path`.
    public func enableReload(from path: String) {
        runtime.reloader.withLock { reloader in
            reloader = { [weak self] in await self?.reload(fromFile: path) ?? .refused("the server is shutting down") }
        }
    }

    /// Reads `path` again and applies it.
    public func reload(fromFile path: String) async -> ReloadOutcome {
        let configuration: CodexpoolConfiguration
        do {
            configuration = try ConfigurationLoader().load(contentsOf: path)
        } catch {
            return refuse("\(error)")
        }
        return await reload(to: configuration)
    }

    /// Applies `candidate`: credentials and users added, removed or changed, the listener moved,
    /// the inbound certificate re-read. Keys that need a restart keep their running values (the
    /// summary names them).
    public func reload(to candidate: CodexpoolConfiguration) async -> ReloadOutcome {
        let started = reloading.withLock { running in
            defer { running = true }
            return !running
        }
        guard started else { return .refused("another reload is under way; try again when it has finished") }
        defer { reloading.withLock { $0 = false } }

        let change = ConfigurationChange(from: runtime.configuration, to: candidate)
        let next = change.effective
        let findings = TLSPreflight.check(next)
        for warning in findings.warnings { runtime.logger.warning("\(warning)") }
        guard findings.errors.isEmpty else { return refuse(findings.errors.joined(separator: "; ")) }
        let tls: OpenSSLContext?
        let roster: CredentialRoster
        do {
            tls = try next.tls.map { try OpenSSLContext.server(certificateChainFile: $0.certificatePath, privateKeyFile: $0.keyPath) }
            roster = try runtime.prepareRoster(for: next)
        } catch {
            return refuse("\(error)")
        }
        var moved: (any Channel)?
        if let move = change.listenMoved, !isSecondary {
            do {
                moved = try await Self.bind(move.to, runtime: runtime, tracker: tracker, tls: inboundTLS)
            } catch {
                return refuse("cannot listen on \(move.to): \(error)")
            }
        }

        // Everything is ready: put it in force.
        if !isSecondary { inboundTLS.replace(with: tls) }
        await runtime.commit(next, roster: roster)
        if let moved {
            // Connections accepted on the old socket stay open; it only stops accepting.
            let old = listener.withLock { listener in
                defer { listener = moved }
                return listener
            }
            try? await old.close()
            runtime.logger.notice("listening on \(tls == nil ? "http" : "https")://\(next.listen.host):\(port)")
        }
        if !isSecondary { updateConnectors(next) }
        runtime.logger.notice("configuration reloaded: \(change.summary)")
        return .applied(change.summary)
    }

    private func refuse(_ reason: String) -> ReloadOutcome {
        runtime.logger.error("reload refused, the running configuration stays in force: \(reason)")
        return .refused(reason)
    }
}
