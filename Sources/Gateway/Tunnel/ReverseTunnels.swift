import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP
import Yamux

/// The receiver's reverse sessions (ocm-reference.md §6): at most one per credential, each a
/// yamux session on a connection the connector dialled in, on which this side opens streams.
final class ReverseTunnels: Sendable {
    struct Session: Sendable {
        let id: UInt64
        let channel: any Channel
        let handler: NIOLoopBound<YamuxSessionHandler>
        /// HTTP streams between exchanges, reused like keep-alive connections (the reference's Go
        /// client does the same through its http.Transport): no stream set-up per request.
        let streams: UpstreamConnectionPool
    }

    private let sessions = Mutex<(current: [String: Session], nextID: UInt64)>(([:], 0))

    /// The receiver credentials' tokens, for the handshake; connector-mode credentials do not
    /// accept sessions (§6.2). A reload replaces them; sessions already attached stay.
    private let acceptedTokens: Mutex<[(tag: String, token: Secret)]>
    private let streamReadTimeout: TimeAmount
    /// Idle streams are closed after this long.
    static let streamIdleTimeout: TimeAmount = .seconds(60)
    /// Idle streams kept per session beyond what is in use: as many as a busy balancer has
    /// requests at once through one connector, so a steady load reuses its streams instead of
    /// closing some after every answer and opening them again (with 64 requests at once and 32
    /// kept, that churn was 14 % of the tunnel's CPU per request). An idle stream costs a few
    /// KiB on each side; the connector may hold 16,384 at once.
    static let defaultMaximumIdleStreams = 256
    let maximumIdleStreams: Int

    init(tokens: [(tag: String, token: Secret)], streamReadTimeout: TimeAmount, maximumIdleStreams: Int = defaultMaximumIdleStreams) {
        acceptedTokens = Mutex(tokens)
        self.streamReadTimeout = streamReadTimeout
        self.maximumIdleStreams = maximumIdleStreams
    }

    var acceptsSessions: Bool { acceptedTokens.withLock { !$0.isEmpty } }

    func replaceTokens(_ tokens: [(tag: String, token: Secret)]) {
        acceptedTokens.withLock { $0 = tokens }
    }

    /// The credential whose token this is.
    func tag(forToken token: Substring) -> String? {
        let tokens = acceptedTokens.withLock { $0 }
        return constantTimeMatch(token, among: tokens, secret: \.token)?.tag
    }

    /// A new id for `attach`; `detach` needs it.
    func nextSessionID() -> UInt64 {
        sessions.withLock { state in
            state.nextID += 1
            return state.nextID
        }
    }

    /// Makes the session the credential's current one; the one it replaces, if any.
    func attach(_ tag: String, id: UInt64, channel: any Channel, handler: NIOLoopBound<YamuxSessionHandler>) -> Session? {
        let streams = Self.streamPool(channel: channel, handler: handler, readTimeout: streamReadTimeout, maximumIdle: maximumIdleStreams)
        channel.closeFuture.whenComplete { _ in streams.closeAll() }
        return sessions.withLock { state in
            let replaced = state.current[tag]
            state.current[tag] = Session(id: id, channel: channel, handler: handler, streams: streams)
            return replaced
        }
    }

    private static func streamPool(channel: any Channel, handler: NIOLoopBound<YamuxSessionHandler>, readTimeout: TimeAmount,
                                   maximumIdle: Int) -> UpstreamConnectionPool {
        UpstreamConnectionPool(eventLoop: channel.eventLoop, idleTimeout: streamIdleTimeout, maximumIdle: maximumIdle) { _ in
            openStream(on: handler) { stream in
                stream.eventLoop.makeCompletedFuture { try UpstreamClient.addHTTPClientPipeline(to: stream, readTimeout: readTimeout) }
            }
            .flatMapThrowing { stream in try UpstreamHTTPConnection(channel: stream, target: .reverseProxy) }
        }
    }

    /// A new stream on a session; call on the session's loop.
    private static func openStream(on handler: NIOLoopBound<YamuxSessionHandler>,
                                   initializer: YamuxSessionHandler.StreamInitializer?) -> EventLoopFuture<any Channel> {
        do {
            return try handler.value.openStream(initializer: initializer)
        } catch {
            return handler.eventLoop.makeFailedFuture(error)
        }
    }

    /// Forgets the session if it is still the current one; true if it was.
    func detach(_ tag: String, id: UInt64) -> Bool {
        sessions.withLock { state in
            guard state.current[tag]?.id == id else { return false }
            state.current[tag] = nil
            return true
        }
    }

    func session(for tag: String) -> Session? {
        sessions.withLock { $0.current[tag] }
    }

    /// A removed receiver: its session drains like at shutdown, and no new one is accepted (its
    /// token is gone).
    func drain(_ tag: String) {
        let session = sessions.withLock { $0.current.removeValue(forKey: tag) }
        session?.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    /// Shutdown: every session drains (GoAway, its streams in flight finish, then it closes).
    func drainAll() {
        let all = sessions.withLock { state in
            defer { state.current = [:] }
            return Array(state.current.values)
        }
        for session in all { session.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// A new stream on the credential's session, set up by `initializer`; the future completes
    /// on the session's loop (or on `eventLoop` when there is no session).
    func openStream(_ tag: String, on eventLoop: any EventLoop,
                    initializer: @escaping YamuxSessionHandler.StreamInitializer) -> EventLoopFuture<any Channel> {
        onSession(tag, on: eventLoop) { session in Self.openStream(on: session.handler, initializer: initializer) }
    }

    /// An HTTP/1.1 stream on the credential's session — an idle one, or a new one — handed to
    /// `eventLoop` (the caller's), whatever loop the session runs on; it returns to the session
    /// after a clean exchange.
    func openConnection(_ tag: String, fresh: Bool = false, on eventLoop: any EventLoop) -> EventLoopFuture<any UpstreamExchangeConnection> {
        onSession(tag, on: eventLoop) { session in
            session.streams.acquire(.reverseProxy, fresh: fresh).map { ($0, session.streams, $0.exchangesStarted > 0) }
        }
        .hop(to: eventLoop)
        .map { connection, pool, reused in CrossLoopUpstreamConnection(connection, callerLoop: eventLoop, wasReused: reused) { pool.release($0) } }
    }

    /// Runs `body` on the loop of the credential's session; any failure reads as "cannot open a
    /// stream to the connector".
    private func onSession<Value: Sendable>(_ tag: String, on eventLoop: any EventLoop,
                                            _ body: @escaping @Sendable (Session) -> EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        guard let session = session(for: tag) else {
            return eventLoop.makeFailedFuture(UpstreamError(.connect, "reverse connection not established for \(tag)"))
        }
        return session.channel.eventLoop.flatSubmit { body(session) }
            .flatMapErrorThrowing { error in throw UpstreamError(.connect, "cannot open a stream to the connector of \(tag): \(error)") }
    }
}
