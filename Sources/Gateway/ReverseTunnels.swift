import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PoolCore
import Synchronization
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
    /// accept sessions (§6.2).
    let tokens: [(tag: String, token: Secret)]
    private let streamReadTimeout: TimeAmount
    /// Idle streams are closed after this long, and beyond this many.
    static let streamIdleTimeout: TimeAmount = .seconds(60)
    static let maximumIdleStreams = 32

    init(tokens: [(tag: String, token: Secret)], streamReadTimeout: TimeAmount) {
        self.tokens = tokens
        self.streamReadTimeout = streamReadTimeout
    }

    /// The credential whose token this is.
    func tag(forToken token: Substring) -> String? {
        constantTimeMatch(token, among: tokens, secret: \.token)?.tag
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
        let streams = Self.streamPool(channel: channel, handler: handler, readTimeout: streamReadTimeout)
        channel.closeFuture.whenComplete { _ in streams.closeAll() }
        return sessions.withLock { state in
            let replaced = state.current[tag]
            state.current[tag] = Session(id: id, channel: channel, handler: handler, streams: streams)
            return replaced
        }
    }

    private static func streamPool(channel: any Channel, handler: NIOLoopBound<YamuxSessionHandler>, readTimeout: TimeAmount) -> UpstreamConnectionPool {
        UpstreamConnectionPool(eventLoop: channel.eventLoop, idleTimeout: streamIdleTimeout, maximumIdle: maximumIdleStreams) { _ in
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
    func openConnection(_ tag: String, on eventLoop: any EventLoop) -> EventLoopFuture<any UpstreamExchangeConnection> {
        onSession(tag, on: eventLoop) { session in session.streams.acquire(.reverseProxy).map { ($0, session.streams) } }
            .hop(to: eventLoop)
            .map { connection, pool in CrossLoopUpstreamConnection(connection, callerLoop: eventLoop) { pool.release($0) } }
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

extension UpstreamTarget {
    /// The placeholder origin of requests through a tunnel (§5.2); never dialled.
    static let reverseProxy = UpstreamTarget(host: "reverse-proxy", port: 80, tls: nil, serverName: "reverse-proxy", hostHeader: "reverse-proxy")
}

/// What a proxy exchange needs from the connection carrying it; called on the exchange's loop.
protocol UpstreamExchangeConnection: AnyObject, Sendable {
    /// Sends a request and streams the response to `delegate`, on the exchange's loop.
    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate)
    func setReading(_ enabled: Bool)
    /// Gives up on the exchange in flight.
    func abandon()
    /// The connection was obtained but not used (the exchange ended meanwhile).
    func discardUnused()
}

/// A pooled origin connection: it goes back to its event loop's pool when an exchange ends cleanly.
final class PooledUpstreamConnection: UpstreamExchangeConnection {
    private let connection: UpstreamHTTPConnection
    private let pool: UpstreamConnectionPool

    init(_ connection: UpstreamHTTPConnection, pool: UpstreamConnectionPool) {
        self.connection = connection
        self.pool = pool
    }

    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate) {
        let pool = pool
        connection.execute(head, body: body, delegate: delegate) { pool.release($0) }
    }

    func setReading(_ enabled: Bool) { connection.setReading(enabled) }
    func abandon() { connection.abandon() }
    func discardUnused() { pool.release(connection) }
}

/// A connection that may live on another event loop than its exchange (a tunnel stream is on
/// its session's): calls go over to that loop and response callbacks come back, in order, to
/// the exchange's. After a clean exchange it goes where `afterUse` says: back to its pool, or
/// closed (a dedicated socket for a long-lived status stream).
final class CrossLoopUpstreamConnection: UpstreamExchangeConnection {
    private let connection: UpstreamHTTPConnection
    private let callerLoop: any EventLoop
    private let afterUse: @Sendable (UpstreamHTTPConnection) -> Void

    init(_ connection: UpstreamHTTPConnection, callerLoop: any EventLoop,
         afterUse: @escaping @Sendable (UpstreamHTTPConnection) -> Void = { $0.channel.close(promise: nil) }) {
        self.connection = connection
        self.callerLoop = callerLoop
        self.afterUse = afterUse
    }

    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate) {
        let relay = DelegateRelay(NIOLoopBound(delegate, eventLoop: callerLoop))
        let (connection, afterUse) = (connection, afterUse)
        connection.channel.eventLoop.execute {
            connection.execute(head, body: body, delegate: relay) { afterUse($0) }
        }
    }

    func setReading(_ enabled: Bool) {
        connection.setReading(enabled)
    }

    func abandon() {
        let connection = connection
        connection.channel.eventLoop.execute { connection.abandon() }
    }

    func discardUnused() {
        let (connection, afterUse) = (connection, afterUse)
        connection.channel.eventLoop.execute { afterUse(connection) }
    }
}

/// Forwards response callbacks from the connection's loop to the delegate's; directly when
/// both are the same loop (then nothing is ever queued, so order is kept either way).
private final class DelegateRelay: UpstreamResponseDelegate, Sendable {
    private let delegate: NIOLoopBound<any UpstreamResponseDelegate>

    init(_ delegate: NIOLoopBound<any UpstreamResponseDelegate>) {
        self.delegate = delegate
    }

    private func deliver(_ call: @escaping @Sendable (any UpstreamResponseDelegate) -> Void) {
        let delegate = delegate
        if delegate.eventLoop.inEventLoop { return call(delegate.value) }
        delegate.eventLoop.execute { call(delegate.value) }
    }

    func upstreamReceivedHead(_ head: HTTPResponseHead) { deliver { $0.upstreamReceivedHead(head) } }
    func upstreamReceivedBody(_ buffer: ByteBuffer) { deliver { $0.upstreamReceivedBody(buffer) } }
    func upstreamFinished() { deliver { $0.upstreamFinished() } }
    func upstreamFailed(_ error: UpstreamError) { deliver { $0.upstreamFailed(error) } }
    func upstreamReadComplete() { deliver { $0.upstreamReadComplete() } }
}

// MARK: Receiving a connector

/// The exact answer of §6.2 step 4.
let reverseSwitchingProtocols = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\n\r\n"

enum ReverseAcceptance {
    case accepted(String)
    case refused(GatewayResponse)
}

extension GatewayRuntime {
    /// Checks a `GET /ocm/v1/reverse` in the reference's order (§6.2 step 3): the credential it
    /// names, or the refusal to send.
    func acceptReverse(_ head: HTTPRequestHead) -> ReverseAcceptance {
        guard head.headers["upgrade"].first == "reverse-proxy" else {
            return .refused(.error(.badRequest, type: "invalid_request_error", message: "missing Upgrade header"))
        }
        let token: Substring
        switch UserAuthenticator.bearerToken(in: head.headers) {
        case .failure(let failure): return .refused(failure.response)
        case .success(let bearer): token = bearer
        }
        guard let tag = reverseTunnels.tag(forToken: token) else {
            logger.warning("reverse connection refused: invalid reverse token (fingerprint \(Secret(String(token)).fingerprint))")
            return .refused(.error(.unauthorized, type: "authentication_error", message: "invalid reverse token"))
        }
        return .accepted(tag)
    }

    /// Turns the connection into the credential's tunnel: the exact 101, then yamux as client.
    /// The HTTP handlers stay in the pipeline but see no more bytes: the session handler sits
    /// below them (just above TLS) and consumes everything.
    func takeOverReverseConnection(_ channel: any Channel, tag: String) throws {
        let sync = channel.pipeline.syncOperations
        let session = YamuxSessionHandler(role: .client, configuration: tunnelSettings, inboundStreamInitializer: nil)
        let position: ChannelPipeline.SynchronousOperations.Position =
            (try? sync.handler(type: OpenSSLHandler.self)).map { .after($0) } ?? .first
        try sync.addHandler(session, position: position)
        let sessionID = reverseTunnels.nextSessionID()
        try sync.addHandler(TunnelSessionObserver(roundTrip: { [self] in recordRoundTrip(tag, $0) },
                                                  wentAway: { [self] in connectorWentAway(tag, id: sessionID, code: $0) }),
                            position: .after(session))
        let context = try sync.context(handler: session)
        context.writeAndFlush(NIOAny(ByteBuffer(string: reverseSwitchingProtocols)), promise: nil)
        // The pipelining handler holds back reads until the request is answered, which in HTTP
        // terms it never is: without it, reading resumes for yamux.
        if let pipelining = try? sync.handler(type: HTTPServerPipelineHandler.self) { sync.removeHandler(pipelining, promise: nil) }
        channel.read()
        let replaced = reverseTunnels.attach(tag, id: sessionID, channel: channel, handler: NIOLoopBound(session, eventLoop: channel.eventLoop))
        replaced?.channel.close(promise: nil)
        logger.info("reverse connection established for \(tag) from \(channel.remoteAddress.map { "\($0)" } ?? "unknown")")
        // Health first: whoever sees the credential available also sees its tunnel online.
        tunnelHealthBoard.online(tag, at: clock.now())
        setAvailability(tag, .available)
        // The session is the preferred path: the status stream moves onto it (§6.4).
        peerWatchers[tag]?.restart(runtime: self)
        channel.closeFuture.whenComplete { [self] _ in
            guard reverseTunnels.detach(tag, id: sessionID) else { return }
            let upFor = tunnelHealthBoard.offline(tag, at: clock.now())
            logger.warning("reverse connection lost for \(tag)\(upFor.map { " after \(DurationText.interval($0))" } ?? "")")
            setAvailability(tag, .unavailable(UnavailableReason("connector offline", since: clock.now())))
        }
    }

    /// The connector is shutting down (GoAway): new requests go elsewhere at once, while the
    /// streams in flight finish and the connector closes the connection after the last one.
    private func connectorWentAway(_ tag: String, id: UInt64, code: YamuxGoAwayCode) {
        guard let session = reverseTunnels.session(for: tag), session.id == id, reverseTunnels.detach(tag, id: id) else { return }
        session.streams.closeAll()
        let upFor = tunnelHealthBoard.offline(tag, at: clock.now())
        let reason = code == .normal ? "shutting down" : "going away (\(code))"
        logger.notice("connector for \(tag) is \(reason)\(upFor.map { " after \(DurationText.interval($0))" } ?? ""); its streams in flight finish")
        // Unavailable for new work, but what it has begun is not interrupted: the connector
        // answers it, and ends its WebSocket sessions itself.
        setAvailability(tag, .unavailable(UnavailableReason("connector offline", since: clock.now())), interruptingItsWork: false)
    }

    /// - Parameter interruptingItsWork: whether requests and sessions waiting on the credential
    ///   are interrupted when it becomes unusable (the pool asks for that).
    private func setAvailability(_ tag: String, _ availability: Availability, interruptingItsWork: Bool = true) {
        var events = withPool { $0.update(tag, now: clock.now()) { $0.availability = availability } }
        if !interruptingItsWork { events.interruptions.removeAll { $0 == .credential(tag) } }
        apply(events)
    }
}
