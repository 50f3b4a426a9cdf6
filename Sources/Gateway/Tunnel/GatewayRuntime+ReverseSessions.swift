import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP
import Yamux

/// The exact answer of §6.2 step 4.
let reverseSwitchingProtocols = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\n\r\n"

enum ReverseAcceptance {
    case accepted(String)
    case refused(GatewayResponse)
}

extension GatewayRuntime {
    /// Checks a `GET /ocm/v1/reverse` in the reference's order (§6.2 step 3): the credential it
    /// names, or the refusal to send.
    func acceptReverse(_ head: HTTPRequestHead, remoteAddress: SocketAddress?) -> ReverseAcceptance {
        guard head.headers["upgrade"].first == "reverse-proxy" else {
            return .refused(.error(.badRequest, type: "invalid_request_error", message: "missing Upgrade header"))
        }
        let address = remoteAddress?.ipAddress ?? "unknown"
        if let retryAfter = authenticationThrottle.retryAfter(address, now: clock.now()) {
            metrics.recordRefusal(.authenticationThrottled)
            return .refused(UserAuthenticator.Failure.throttled(retryAfter: retryAfter).response)
        }
        let token: Substring
        switch UserAuthenticator.bearerToken(in: head.headers) {
        case .failure(let failure): return .refused(failure.response)
        case .success(let bearer): token = bearer
        }
        guard let tag = reverseTunnels.tag(forToken: token) else {
            logger.warning("reverse connection refused from \(address): invalid reverse token (fingerprint \(Secret(String(token)).fingerprint))")
            authenticationThrottle.recordFailure(address, now: clock.now())
            metrics.recordRefusal(.unauthenticated)
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
                                                  wentAway: { [self] in connectorWentAway(tag, id: sessionID, code: $0) },
                                                  refusedStream: { [self] in recordRefusedTunnelStream(tag) }),
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
        var events = withPool { $0.setAvailability(tag, availability, now: clock.now()) }
        if !interruptingItsWork { events.interruptions.removeAll { $0 == .credential(tag) } }
        apply(events)
    }

    /// The peer of `tag`'s tunnel opened streams past `maximumInboundStreams`; one was reset.
    /// Logged at 1, 2, 4, 8 … refusals, so a flood cannot flood the log too.
    func recordRefusedTunnelStream(_ tag: String) {
        let total = metrics.recordTunnelStreamRefused(credential: tag)
        guard total & (total - 1) == 0 else { return }
        logger.warning("""
            the peer of \(tag)'s tunnel opened more than \(tunnelSettings.maximumInboundStreams) streams at once; \
            the excess is reset (\(total) so far)
            """)
    }
}
