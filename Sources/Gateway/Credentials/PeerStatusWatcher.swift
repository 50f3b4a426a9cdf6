import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

/// How a status request to a peer instance ended.
enum PeerStatusEnd: Sendable, Equatable {
    /// A one-shot request got its answer.
    case answered
    /// The stream dropped (end of stream, closed connection, timeout): worth reconnecting.
    case dropped(String)
    /// The answer cannot be used (not 200, an invalid frame) or the peer cannot be reached:
    /// reconnecting would only repeat it (§5.5).
    case fatal(String)
}

/// One `GET /ocm/v1/status[?watch=true]` to a peer; every valid frame is applied to the
/// credential as it arrives.
final class PeerStatusExchange: Sendable {
    let ended: EventLoopFuture<PeerStatusEnd>
    private let promise: EventLoopPromise<PeerStatusEnd>
    private let state = Mutex<(connection: (any UpstreamExchangeConnection)?, finished: Bool)>((nil, false))

    private init(promise: EventLoopPromise<PeerStatusEnd>) {
        self.promise = promise
        ended = promise.futureResult
    }

    /// Asks the peer behind external credential `tag`, through its reverse session when one is
    /// up (preferred for everything, §6.4), else over its URL.
    static func start(_ tag: String, watch: Bool, runtime: GatewayRuntime, on eventLoop: any EventLoop) -> PeerStatusExchange {
        let exchange = PeerStatusExchange(promise: eventLoop.makePromise())
        let path = "/ocm/v1/status" + (watch ? "?watch=true" : "")
        let opened: EventLoopFuture<(any UpstreamExchangeConnection, String, String, Secret)>
        switch runtime.backends[tag] {
        case .forward(let url, let target, let token) where runtime.reverseTunnels.session(for: tag) == nil:
            opened = runtime.upstream.connect(target, on: eventLoop)
                .map { (CrossLoopUpstreamConnection($0, callerLoop: eventLoop), target.hostHeader, url.path + path, token) }
        case .forward(_, _, let token), .receiver(let token):
            opened = runtime.reverseTunnels.openConnection(tag, on: eventLoop)
                .map { ($0, UpstreamTarget.reverseProxy.hostHeader, path, token) }
        case .local, nil:
            exchange.finish(.fatal("\(tag) is not an external credential"))
            return exchange
        }
        opened.whenComplete { result in
            switch result {
            case .failure(let error):
                exchange.finish(.fatal("\(error)"))
            case .success(let (connection, host, uri, token)):
                let finished = exchange.state.withLock { state in
                    state.connection = connection
                    return state.finished
                }
                if finished { return connection.discardUnused() }
                var headers = HTTPHeaders()
                headers.add(name: "host", value: host)
                headers.add(name: "authorization", value: "Bearer \(token.value)")
                headers.add(name: "accept", value: "application/json")
                let reader = StatusFrameReader(watch: watch, exchange: exchange) { status in runtime.applyPeerStatus(status, tag: tag) }
                connection.execute(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers), body: nil, delegate: reader)
            }
        }
        return exchange
    }

    /// Ends the exchange (once) and closes its connection: status connections are never reused.
    func finish(_ end: PeerStatusEnd) {
        let (first, connection) = state.withLock { state in
            defer { state.finished = true }
            return (!state.finished, state.connection)
        }
        guard first else { return }
        if let connection { ended.eventLoop.execute { connection.abandon() } }
        promise.succeed(end)
    }

    func cancel() {
        finish(.fatal("cancelled"))
    }
}

/// Reads a status answer as NDJSON: one five-field object per line (§5.4).
private final class StatusFrameReader: UpstreamResponseDelegate {
    // Used only on the exchange's loop.
    private let watch: Bool
    private let exchange: PeerStatusExchange
    private let onFrame: (AggregateStatus) -> Void
    private var pending: [UInt8] = []
    private var done = false

    static let maxFrameBytes = 64 * 1024

    init(watch: Bool, exchange: PeerStatusExchange, onFrame: @escaping (AggregateStatus) -> Void) {
        self.watch = watch
        self.exchange = exchange
        self.onFrame = onFrame
    }

    private func end(_ outcome: PeerStatusEnd) {
        guard !done else { return }
        done = true
        exchange.finish(outcome)
    }

    func upstreamReceivedHead(_ head: HTTPResponseHead) {
        if head.status != .ok { end(.fatal("HTTP \(head.status.code)")) }
    }

    func upstreamReceivedBody(_ buffer: ByteBuffer) {
        guard !done else { return }
        pending += buffer.readableBytesView
        while !done, let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[..<newline]
            pending.removeSubrange(...newline)
            guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) else { continue }
            frame(Data(line))
        }
        if !done, pending.count > Self.maxFrameBytes { end(.fatal("invalid response: status frame longer than \(Self.maxFrameBytes) bytes")) }
    }

    private func frame(_ line: Data) {
        do {
            onFrame(try AggregateStatus(statusJSON: line))
            if !watch { end(.answered) }
        } catch {
            end(.fatal("invalid response: \(error)"))
        }
    }

    func upstreamFinished() {
        // A one-shot answer may lack the trailing newline.
        if !done, !watch, !pending.isEmpty { frame(Data(pending)) }
        end(watch ? .dropped("status stream ended") : .fatal("invalid response: empty body"))
    }

    func upstreamFailed(_ error: UpstreamError) {
        switch error.kind {
        case .closedBeforeResponse, .closedMidResponse, .timeout: end(.dropped(error.message))
        case .connect, .malformedResponse: end(.fatal(error.message))
        }
    }
}

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
