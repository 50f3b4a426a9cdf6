import Configuration
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

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
        switch runtime.backend(tag) {
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

    func upstreamReceivedHead(_ head: ReceivedResponseHead) {
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
        case .connect, .malformedResponse, .unsendableRequest: end(.fatal(error.message))
        }
    }
}
