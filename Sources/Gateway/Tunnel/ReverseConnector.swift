import Configuration
import Foundation
import Logging
import NIOCore
import NIOPosix
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP
import Yamux

/// The connector side of a reverse session (ocm-reference.md §6): dials the receiver, upgrades
/// the connection with the exact request of §6.2, and serves every stream the receiver opens
/// with this instance's full gateway handler. Reconnects with the reference's backoff.
final class ReverseConnector: Sendable {
    let tag: String
    private let url: EndpointURL
    private let target: UpstreamTarget
    private let token: Secret
    private let runtime: GatewayRuntime
    private let serveStream: @Sendable (any Channel) throws -> Void
    private let state = Mutex(State())

    private struct State {
        var stopped = false
        var channel: (any Channel)?
        var task: Task<Void, Never>?
        /// The receiver sent GoAway on the current session: it is shutting down.
        var receiverWentAway = false
    }

    /// How long the receiver may take to answer the upgrade.
    static let handshakeTimeout: TimeAmount = .seconds(30)

    init(tag: String, url: EndpointURL, target: UpstreamTarget, token: Secret, runtime: GatewayRuntime,
         serveStream: @escaping @Sendable (any Channel) throws -> Void) {
        self.tag = tag
        self.url = url
        self.target = target
        self.token = token
        self.runtime = runtime
        self.serveStream = serveStream
    }

    /// The exact upgrade request (§6.2 step 2); the URL's path is kept as a prefix for a front proxy.
    var upgradeRequest: String {
        let prefix = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        return "GET \(prefix)/ocm/v1/reverse HTTP/1.1\r\nHost: \(url.hostHeader)\r\nConnection: Upgrade\r\n"
            + "Upgrade: reverse-proxy\r\nAuthorization: Bearer \(token.value)\r\n\r\n"
    }


    func start() {
        let task = Task { await run() }
        state.withLock { $0.task = task }
    }

    /// Stops reconnecting and drains the live session: GoAway to the receiver, the streams in
    /// flight finish, and the connection closes after the last one.
    /// - Returns: the session's connection, for the caller to close if draining takes too long.
    @discardableResult
    func stop() -> (any Channel)? {
        let (channel, task) = state.withLock { state in
            state.stopped = true
            return (state.channel, state.task)
        }
        task?.cancel()
        channel?.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        return channel
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func run() async {
        var backoff = ReconnectBackoff()
        while !isStopped {
            let started = ContinuousClock.now
            let outcome: String
            do {
                let channel = try await connect()
                let keep = state.withLock { state -> Bool in
                    guard !state.stopped else { return false }
                    state.channel = channel
                    state.receiverWentAway = false
                    return true
                }
                guard keep else {
                    try? await channel.close()
                    return
                }
                runtime.logger.info("reverse connection established for \(tag)")
                runtime.tunnelHealthBoard.online(tag, at: runtime.now)
                try? await channel.closeFuture.get()
                runtime.tunnelHealthBoard.offline(tag, at: runtime.now)
                outcome = state.withLock { $0.receiverWentAway } ? "the receiver is shutting down" : "connection closed"
            } catch {
                outcome = "\(error)"
            }
            if isStopped {
                runtime.logger.info("reverse connection for \(tag) closed: this instance is shutting down")
                return
            }
            let delay = backoff.delay(afterSessionStartedAt: started)
            runtime.logger.warning("reverse connection for \(tag) lost: \(outcome), reconnecting in \(delay)")
            try? await Task.sleep(for: delay)
        }
    }

    /// One attempt: dial, upgrade, and start the yamux server; the channel of the live session.
    private func connect() async throws -> any Channel {
        let request = upgradeRequest
        let target = target
        let serveStream = serveStream
        let (runtime, tag) = (runtime, tag)
        let ready = runtime.eventLoopGroup.next().makePromise(of: Void.self)
        let connecting = ClientBootstrap(group: ready.futureResult.eventLoop)
            .connectTimeout(runtime.upstream.timeouts.connect)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = target.tls { try sync.addHandler(OpenSSLHandler(context: tls, serverName: target.serverName)) }
                    try sync.addHandler(ReverseUpgradeHandler(request: request, ready: ready, settings: runtime.tunnelSettings, serveStream: serveStream,
                                                              roundTrip: { runtime.recordRoundTrip(tag, $0) },
                                                              wentAway: { [weak self] _ in self?.state.withLock { $0.receiverWentAway = true } },
                                                              refusedStream: { runtime.recordRefusedTunnelStream(tag) }))
                }
            }
            .connect(host: target.host, port: target.port)
        let channel: any Channel
        do {
            channel = try await connecting.get()
        } catch {
            // No connection, no upgrade: the promise must still be completed (a leaked one traps).
            ready.fail(error)
            throw error
        }
        let timeout = channel.eventLoop.scheduleTask(in: Self.handshakeTimeout) {
            ready.fail(ReverseConnectorError("the receiver did not answer the upgrade within \(Self.handshakeTimeout)"))
        }
        channel.closeFuture.whenComplete { _ in ready.fail(ReverseConnectorError("the receiver closed the connection during the upgrade")) }
        do {
            try await ready.futureResult.get()
            timeout.cancel()
            return channel
        } catch {
            timeout.cancel()
            try? await channel.close()
            throw error
        }
    }
}

struct ReverseConnectorError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
