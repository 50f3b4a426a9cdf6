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
        let since: Date
    }

    private let sessions = Mutex<(current: [String: Session], nextID: UInt64)>(([:], 0))

    /// The receiver credentials' tokens, for the handshake; connector-mode credentials do not
    /// accept sessions (§6.2).
    let tokens: [(tag: String, token: Secret)]

    init(tokens: [(tag: String, token: Secret)]) {
        self.tokens = tokens
    }

    /// The credential whose token this is, compared in constant time against every one.
    func tag(forToken token: Substring) -> String? {
        var matched: String?
        for (tag, secret) in tokens where secret.constantTimeEquals(token) && matched == nil { matched = tag }
        return matched
    }

    /// Makes `session` the credential's session; the one it replaces is closed. Returns the
    /// new session's id, which `detach` needs.
    func attach(_ tag: String, channel: any Channel, handler: NIOLoopBound<YamuxSessionHandler>, now: Date) -> (id: UInt64, replaced: Session?) {
        sessions.withLock { state in
            state.nextID += 1
            let replaced = state.current[tag]
            state.current[tag] = Session(id: state.nextID, channel: channel, handler: handler, since: now)
            return (state.nextID, replaced)
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

    func closeAll() {
        let all = sessions.withLock { state in
            defer { state.current = [:] }
            return Array(state.current.values)
        }
        for session in all { session.channel.close(promise: nil) }
    }

    /// A new stream on the credential's session, set up as an HTTP/1.1 client connection and
    /// handed to `eventLoop` (the caller's), whatever loop the session runs on.
    func openConnection(_ tag: String, readTimeout: TimeAmount, on eventLoop: any EventLoop) -> EventLoopFuture<any UpstreamExchangeConnection> {
        guard let session = session(for: tag) else {
            return eventLoop.makeFailedFuture(UpstreamError(.connect, "reverse connection not established for \(tag)"))
        }
        let target = UpstreamTarget.reverseProxy
        let opened = session.channel.eventLoop.flatSubmit { () -> EventLoopFuture<UpstreamHTTPConnection> in
            do {
                return try session.handler.value.openStream { stream in
                    stream.eventLoop.makeCompletedFuture {
                        let sync = stream.pipeline.syncOperations
                        try sync.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
                        try sync.addHandler(IdleStateHandler(readTimeout: readTimeout))
                        try sync.addHandler(UpstreamHTTPClientHandler())
                    }
                }.flatMapThrowing { stream in
                    let handler = try stream.pipeline.syncOperations.handler(type: UpstreamHTTPClientHandler.self)
                    return UpstreamHTTPConnection(channel: stream, target: target, handler: handler)
                }
            } catch {
                return session.channel.eventLoop.makeFailedFuture(error)
            }
        }
        return opened
            .flatMapErrorThrowing { error in throw UpstreamError(.connect, "cannot open a stream to the connector of \(tag): \(error)") }
            .hop(to: eventLoop)
            .map { connection in
                connection.channel.eventLoop === eventLoop ? connection as any UpstreamExchangeConnection : LoopHoppingConnection(connection, callerLoop: eventLoop)
            }
    }
}

extension UpstreamTarget {
    /// The placeholder origin of requests through a tunnel (§5.2); never dialled.
    static let reverseProxy = UpstreamTarget(host: "reverse-proxy", port: 80, tls: nil, serverName: "reverse-proxy", hostHeader: "reverse-proxy")
}

/// What a proxy exchange needs from the connection carrying it.
protocol UpstreamExchangeConnection: AnyObject, Sendable {
    /// Sends a request; `onIdle` runs (on the caller's loop) when the connection could serve another.
    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping (UpstreamHTTPConnection) -> Void)
    func setReading(_ enabled: Bool)
    func abandon()
}

extension UpstreamHTTPConnection: UpstreamExchangeConnection {}

/// An upstream connection on another event loop (a tunnel stream lives on its session's loop):
/// calls go over to the connection's loop and callbacks come back, in order, to the caller's.
/// A tunnel stream carries one exchange and is closed after it.
final class LoopHoppingConnection: UpstreamExchangeConnection {
    private let connection: UpstreamHTTPConnection
    private let callerLoop: any EventLoop

    init(_ connection: UpstreamHTTPConnection, callerLoop: any EventLoop) {
        self.connection = connection
        self.callerLoop = callerLoop
    }

    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping (UpstreamHTTPConnection) -> Void) {
        let relay = DelegateRelay(NIOLoopBound(delegate, eventLoop: callerLoop))
        let connection = connection
        connection.channel.eventLoop.execute {
            connection.execute(head, body: body, delegate: relay) { $0.channel.close(promise: nil) }
        }
    }

    func setReading(_ enabled: Bool) {
        connection.setReading(enabled)
    }

    func abandon() {
        let connection = connection
        connection.channel.eventLoop.execute { connection.abandon() }
    }
}

/// Forwards response callbacks from the connection's loop to the delegate's.
private final class DelegateRelay: UpstreamResponseDelegate, Sendable {
    private let delegate: NIOLoopBound<any UpstreamResponseDelegate>

    init(_ delegate: NIOLoopBound<any UpstreamResponseDelegate>) {
        self.delegate = delegate
    }

    func upstreamReceivedHead(_ head: HTTPResponseHead) {
        delegate.eventLoop.execute { self.delegate.value.upstreamReceivedHead(head) }
    }

    func upstreamReceivedBody(_ buffer: ByteBuffer) {
        delegate.eventLoop.execute { self.delegate.value.upstreamReceivedBody(buffer) }
    }

    func upstreamFinished() {
        delegate.eventLoop.execute { self.delegate.value.upstreamFinished() }
    }

    func upstreamFailed(_ error: UpstreamError) {
        delegate.eventLoop.execute { self.delegate.value.upstreamFailed(error) }
    }

    func upstreamReadComplete() {
        delegate.eventLoop.execute { self.delegate.value.upstreamReadComplete() }
    }
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
        if head.headers.contains(name: "x-api-key") || head.headers.contains(name: "api-key") {
            return .refused(UserAuthenticator.Failure.apiKeyHeader.response)
        }
        guard let authorization = head.headers.first(name: "authorization") else { return .refused(UserAuthenticator.Failure.missing.response) }
        guard authorization.hasPrefix("Bearer ") else { return .refused(UserAuthenticator.Failure.malformed.response) }
        let token = authorization.dropFirst("Bearer ".count)
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
        let session = YamuxSessionHandler(role: .client, inboundStreamInitializer: nil)
        let position: ChannelPipeline.SynchronousOperations.Position =
            (try? sync.handler(type: OpenSSLHandler.self)).map { .after($0) } ?? .first
        try sync.addHandler(session, position: position)
        let context = try sync.context(handler: session)
        context.writeAndFlush(NIOAny(ByteBuffer(string: reverseSwitchingProtocols)), promise: nil)
        // The pipelining handler holds back reads until the request is answered, which in HTTP
        // terms it never is: without it, reading resumes for yamux.
        if let pipelining = try? sync.handler(type: HTTPServerPipelineHandler.self) { sync.removeHandler(pipelining, promise: nil) }
        channel.read()
        let now = clock.now()
        let (id, replaced) = reverseTunnels.attach(tag, channel: channel, handler: NIOLoopBound(session, eventLoop: channel.eventLoop), now: now)
        replaced?.channel.close(promise: nil)
        logger.info("reverse connection established for \(tag) from \(channel.remoteAddress.map { "\($0)" } ?? "unknown")")
        setConnectorOnline(tag, since: now)
        channel.closeFuture.whenComplete { [self] _ in
            guard reverseTunnels.detach(tag, id: id) else { return }
            logger.warning("reverse connection lost for \(tag)")
            setConnectorOffline(tag, since: clock.now())
        }
    }

    private func setConnectorOnline(_ tag: String, since: Date) {
        apply(withPool { $0.update(tag, now: since) { $0.availability = .available } })
        pollIfStale(tag)
    }

    private func setConnectorOffline(_ tag: String, since: Date) {
        apply(withPool { $0.update(tag, now: since) { $0.availability = .unavailable(UnavailableReason("connector offline", since: since)) } })
    }
}
