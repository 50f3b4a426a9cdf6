import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OpenSSLTLS
import Synchronization

/// The listening side of the gateway: accepts connections (optionally over TLS), speaks
/// HTTP/1.1 and the Responses WebSocket, and drains cleanly on shutdown.
public final class GatewayServer: Sendable {
    public let runtime: GatewayRuntime
    /// The listening socket; a reload that moves the listener replaces it.
    let listener: Mutex<any Channel>
    /// The certificate new connections are served with (nil: plain HTTP); a reload re-reads it.
    let inboundTLS: InboundTLS
    let tracker: ConnectionTracker
    /// Connector credentials' dialers by tag, with the settings each was started with.
    let connectors: Mutex<[String: (settings: ExternalCredentialConfiguration, connector: ReverseConnector)]>
    /// A second listener of an instance (`codexpool demo`): no connectors, no reload.
    let isSecondary: Bool
    /// Set while a reload runs; a second one at the same time is refused.
    let reloading = Mutex(false)

    public var port: Int { listener.withLock { $0.localAddress?.port ?? 0 } }

    private init(runtime: GatewayRuntime, listener: any Channel, inboundTLS: InboundTLS, tracker: ConnectionTracker, isSecondary: Bool) {
        self.runtime = runtime
        self.listener = Mutex(listener)
        self.inboundTLS = inboundTLS
        self.tracker = tracker
        self.isSecondary = isSecondary
        connectors = Mutex([:])
    }

    /// Binds the configured address (port 0: any free port) and starts serving.
    /// - Parameter plainHTTP: a second listener of a started instance: plain HTTP even when the
    ///   configuration sets inbound TLS, and the instance's connectors left to the first
    ///   (`codexpool demo` gives the Codex CLI one on loopback).
    public static func start(runtime: GatewayRuntime, host: String? = nil, port: Int? = nil, plainHTTP: Bool = false) async throws -> GatewayServer {
        let configuration = runtime.configuration
        let tls = try (plainHTTP ? nil : configuration.tls).map { try OpenSSLContext.server(certificateChainFile: $0.certificatePath, privateKeyFile: $0.keyPath) }
        let inboundTLS = InboundTLS(tls)
        let tracker = ConnectionTracker()
        let address = ListenAddress(host: host ?? configuration.listen.host, port: port ?? configuration.listen.port)
        let channel = try await bind(address, runtime: runtime, tracker: tracker, tls: inboundTLS)
        let server = GatewayServer(runtime: runtime, listener: channel, inboundTLS: inboundTLS, tracker: tracker, isSecondary: plainHTTP)
        runtime.logger.notice("listening on \(tls == nil ? "http" : "https")://\(address.host):\(server.port)")
        if !plainHTTP { server.updateConnectors(configuration) }
        return server
    }

    /// A listening socket whose connections are served by `runtime`, over the TLS context in
    /// force when each is accepted.
    static func bind(_ address: ListenAddress, runtime: GatewayRuntime, tracker: ConnectionTracker, tls: InboundTLS) async throws -> any Channel {
        let maxConnections = runtime.configuration.limits.maxConnections
        return try await ServerBootstrap(group: runtime.eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = tls.context
                    guard tracker.add(channel, limit: maxConnections) else {
                        return try refuseOverCapacity(channel, runtime: runtime, tls: tls)
                    }
                    try configure(channel, runtime: runtime, tls: tls)
                }
            }
            .bind(host: address.host, port: address.port).get()
    }

    /// Starts, keeps, restarts or stops connector credentials' dialers to match `configuration`;
    /// a stopped one drains (its streams in flight finish).
    func updateConnectors(_ configuration: CodexpoolConfiguration) {
        let runtime = runtime
        var wanted: [String: ExternalCredentialConfiguration] = [:]
        for case .external(let external) in configuration.credentials {
            if case .connector = external.mode { wanted[external.tag] = external }
        }
        let (stopped, started) = connectors.withLock { running -> ([ReverseConnector], [ReverseConnector]) in
            var stopped: [ReverseConnector] = []
            var started: [ReverseConnector] = []
            for (tag, entry) in running where wanted[tag] != entry.settings {
                stopped.append(entry.connector)
                running[tag] = nil
            }
            for (tag, external) in wanted where running[tag] == nil {
                guard case .connector(let url) = external.mode, case .forward(_, let target, _) = runtime.backend(tag) else { continue }
                let connector = ReverseConnector(tag: tag, url: url, target: target, token: external.token, runtime: runtime) { stream in
                    // A tunnel stream comes from the authenticated balancer, which keeps idle streams in
                    // its pool like keep-alive connections: no slowloris or idle guard on those.
                    try GatewayServer.configure(stream, runtime: runtime, tls: nil, guarded: false)
                }
                running[tag] = (external, connector)
                started.append(connector)
            }
            return (stopped, started)
        }
        for connector in stopped { connector.stop() }
        for connector in started { connector.start() }
    }

    private static func addConnectionGuard(to channel: any Channel, runtime: GatewayRuntime, limits: ListenerLimits) throws {
        try channel.pipeline.syncOperations.addHandler(ConnectionGuard(
            maxHeaderBytes: limits.maxHeaderBytes, headerTimeout: limits.headerTimeout, idleTimeout: limits.idleTimeout) { refusal in
            runtime.metrics.recordRefusal(refusal == .headerTooLarge ? .headerTooLarge : .headerTimeout)
            let what = refusal == .headerTooLarge ? "request head over \(limits.maxHeaderBytes) bytes" : "request head not complete within \(limits.headerTimeout) s"
            runtime.logger.info("closed a connection from \(channel.remoteAddress?.ipAddress ?? "unknown"): \(what)")
        })
    }

    /// A connection beyond `limits.max_connections`: a 503 and closed, without reading a request.
    private static func refuseOverCapacity(_ channel: any Channel, runtime: GatewayRuntime, tls: OpenSSLContext?) throws {
        runtime.metrics.recordRefusal(.tooManyConnections)
        if let tls { try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: tls)) }
        let response = GatewayResponse.error(.serviceUnavailable, type: "server_error", code: "too_many_connections",
                                             message: "the server has too many open connections; try again shortly")
        try channel.pipeline.syncOperations.addHandler(ImmediateAnswer(response.rawHTTP(closing: true, allocator: channel.allocator)))
    }

    static func configure(_ channel: any Channel, runtime: GatewayRuntime, tls: OpenSSLContext?, guarded: Bool = true) throws {
        let sync = channel.pipeline.syncOperations
        if let tls { try sync.addHandler(OpenSSLHandler(context: tls)) }
        let limits = runtime.configuration.limits
        if guarded {
            try addConnectionGuard(to: channel, runtime: runtime, limits: limits)
        }
        let slot = NIOLoopBound(WebSocketUpgradeSlot(), eventLoop: channel.eventLoop)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: limits.maxWebSocketMessage,
            shouldUpgrade: { channel, head in WebSocketProxySetup.shouldUpgrade(runtime: runtime, slot: slot.value, channel: channel, head: head) },
            upgradePipelineHandler: { channel, _ in WebSocketProxySetup.installRelay(runtime: runtime, slot: slot.value, channel: channel) })
        // On a successful upgrade the HTTP handler must leave too, or the WebSocket bytes would reach it.
        let upgraded: @Sendable (ChannelHandlerContext) -> Void = { context in
            if let handler = try? context.pipeline.syncOperations.handler(type: GatewayHTTPHandler.self) {
                context.pipeline.syncOperations.removeHandler(handler, promise: nil)
            }
        }
        // Our own codec instead of NIO's decoder and encoder (and no pipelining assistant, which
        // stops and restarts reading around every request): `GatewayHTTPHandler` writes through
        // it directly, holds back pipelined requests and handles quiescing itself. NIO's encoder
        // stays only for the upgrade handler, which writes its 101 through it and then removes both.
        let codec = ClientHTTPCodec(maxHeadBytes: max(limits.maxHeaderBytes, 64 * 1024))
        let upgradeEncoder = HTTPResponseEncoder()
        try sync.addHandlers([
            codec, upgradeEncoder,
            HTTPServerUpgradeHandler(upgraders: [upgrader], httpEncoder: upgradeEncoder, extraHTTPHandlers: [codec], upgradeCompletionHandler: upgraded),
        ])
        try sync.addHandler(GatewayHTTPHandler(runtime: runtime, upgrade: slot.value))
    }

    /// Stops accepting, lets in-flight requests and sessions finish (WebSockets get a close
    /// frame), and force-closes whatever is left after `gracePeriod`.
    public func shutdown(gracePeriod: Duration = .seconds(30)) async {
        runtime.reloader.withLock { $0 = nil }
        try? await listener.withLock { $0 }.close()
        // Connector sessions drain like client connections: the receiver's streams in flight finish.
        let tunnels = connectors.withLock { $0.values.map(\.connector) }.compactMap { $0.stop() }
        let clients = tracker.channels.withLock { Array($0.values) }
        let open = clients + tunnels
        runtime.logger.notice("draining \(open.count) connection(s)")
        for channel in clients { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        runtime.beginDrain()
        let deadline = ContinuousClock.now + gracePeriod
        for channel in open {
            let remaining = deadline - ContinuousClock.now
            if remaining > .zero {
                let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(remaining.components.seconds) * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000)) {
                    channel.close(promise: nil)
                }
                try? await channel.closeFuture.get()
                timer.cancel()
            } else {
                try? await channel.close()
            }
        }
        // Only now: the answers that finished during the drain have their usage saved, and
        // upstream connections stayed available to them until the end.
        await runtime.shutdown()
    }

    /// Open client connections (tests use it to see that nothing leaks).
    public var connectionCount: Int { tracker.channels.withLock { $0.count } }
}

/// Remembers open client connections until they close, up to a limit.
final class ConnectionTracker: Sendable {
    let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    /// False when `limit` connections are open already (the channel is then not tracked).
    func add(_ channel: any Channel, limit: Int) -> Bool {
        let id = ObjectIdentifier(channel)
        let added = channels.withLock { channels in
            guard channels.count < limit else { return false }
            channels[id] = channel
            return true
        }
        if added { channel.closeFuture.whenComplete { [self] _ in _ = channels.withLock { $0.removeValue(forKey: id) } } }
        return added
    }
}

/// Writes one answer as soon as the connection is up, then closes it; reads nothing.
private final class ImmediateAnswer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var answer: ByteBuffer?

    init(_ answer: ByteBuffer) {
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context) }
    }

    private func send(_ context: ChannelHandlerContext) {
        guard let answer else { return }
        self.answer = nil
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
