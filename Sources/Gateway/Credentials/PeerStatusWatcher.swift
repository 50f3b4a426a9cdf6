import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

/// Keeps an external credential's view of its peer current with the status stream (§5.5):
/// reconnects with the connector backoff when the stream drops, stops on a fatal answer. A
/// receiver's watcher is restarted whenever its connector attaches a new session.
final class PeerStatusWatcher: Sendable {
    let tag: String
    private let state = Mutex<(task: Task<Void, Never>?, stopped: Bool)>((nil, false))

    init(tag: String) {
        self.tag = tag
    }

    /// Starts watching, ending a watch already running.
    func restart(runtime: GatewayRuntime) {
        let task = Task { await run(runtime) }
        let previous = state.withLock { state -> Task<Void, Never>? in
            guard !state.stopped else { return task }
            defer { state.task = task }
            return state.task
        }
        previous?.cancel()
    }

    func stop() {
        let task = state.withLock { state in
            state.stopped = true
            return state.task
        }
        task?.cancel()
    }

    private func run(_ runtime: GatewayRuntime) async {
        var backoff = ReconnectBackoff()
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let exchange = PeerStatusExchange.start(tag, watch: true, runtime: runtime, on: runtime.eventLoopGroup.next())
            let end = await withTaskCancellationHandler {
                (try? await exchange.ended.get()) ?? .fatal("cancelled")
            } onCancel: {
                exchange.cancel()
            }
            if Task.isCancelled { return }
            switch end {
            case .answered:
                return
            case .fatal(let message):
                runtime.logger.warning("status stream for \(tag) stopped: \(message)")
                return
            case .dropped(let message):
                let delay = backoff.delay(afterSessionStartedAt: started)
                runtime.logger.info("status stream for \(tag) lost: \(message), reconnecting in \(delay)")
                try? await Task.sleep(for: delay)
            }
        }
    }
}

extension GatewayRuntime {
    /// A peer's status frame: authoritative for its credential, like a successful usage poll.
    func applyPeerStatus(_ status: AggregateStatus, tag: String) {
        let now = clock.now()
        apply(withPool { $0.usagePollAnswered(tag, snapshot: status.snapshot, now: now) })
    }

    /// The lazy one-shot status poll of an external credential (§5.5); a 404 is no failure
    /// (the peer has no status endpoint).
    func pollPeer(_ tag: String) async {
        let exchange = PeerStatusExchange.start(tag, watch: false, runtime: self, on: eventLoopGroup.next())
        let end = (try? await exchange.ended.get()) ?? .fatal("cancelled")
        guard case .fatal(let message) = end, message != "HTTP 404" else { return }
        logger.warning("poll status of \(tag): \(message)")
        let now = clock.now()
        apply(withPool { $0.usagePollFailed(tag, reason: message, now: now) })
    }
}
