import Zlib
import Foundation
public import NIOCore
public import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import Synchronization

/// HTTP/1.1 keep-alive connections to upstream origins, pooled per event loop so a proxied
/// exchange stays on the event loop of the client connection that caused it.
public final class UpstreamClient: Sendable {
    public struct Timeouts: Sendable {
        public var connect: TimeAmount
        /// Longest silence from upstream while waiting for or reading a response.
        public var read: TimeAmount
        /// How long an unused connection stays in the pool.
        public var poolIdle: TimeAmount
        /// How long a WebSocket upgrade may wait for upstream's 101 (or refusal).
        public var upgrade: TimeAmount

        public init(connect: TimeAmount = .seconds(10), read: TimeAmount = .seconds(300), poolIdle: TimeAmount = .seconds(60),
                    upgrade: TimeAmount = .seconds(30)) {
            self.connect = connect
            self.read = read
            self.poolIdle = poolIdle
            self.upgrade = upgrade
        }
    }

    package let timeouts: Timeouts
    private let pools = Mutex<[ObjectIdentifier: UpstreamConnectionPool]>([:])

    public init(timeouts: Timeouts = Timeouts()) {
        self.timeouts = timeouts
    }

    package func pool(for eventLoop: any EventLoop) -> UpstreamConnectionPool {
        pools.withLock { pools in
            let key = ObjectIdentifier(eventLoop)
            if let pool = pools[key] { return pool }
            let pool = UpstreamConnectionPool(eventLoop: eventLoop, idleTimeout: timeouts.poolIdle) { [weak self] target in
                self?.connect(target, on: eventLoop)
            }
            pools[key] = pool
            return pool
        }
    }

    /// Closes every pooled connection.
    public func shutdown() {
        let all = pools.withLock { pools in Array(pools.values) }
        for pool in all { pool.eventLoop.execute { pool.closeAll() } }
    }

    /// Dials a fresh connection to `target` with the HTTP client pipeline.
    package func connect(_ target: UpstreamTarget, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamHTTPConnection> {
        let readTimeout = timeouts.read
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(timeouts.connect)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let context = target.tls {
                        try sync.addHandler(OpenSSLHandler(context: context, serverName: target.serverName))
                    }
                    try Self.addHTTPClientPipeline(to: channel, readTimeout: readTimeout)
                }
            }
            .connect(host: target.host, port: target.port)
            .flatMapErrorThrowing { error in
                throw UpstreamError(.connect, "cannot connect to \(target): \(error)")
            }
            .flatMapThrowing { channel in try UpstreamHTTPConnection(channel: channel, target: target) }
    }

    /// The HTTP/1.1 client end of an upstream connection, on a socket or on a tunnel stream.
    package static func addHTTPClientPipeline(to channel: any Channel, readTimeout: TimeAmount) throws {
        try channel.pipeline.syncOperations.addHandler(UpstreamHTTPClientHandler(readTimeout: readTimeout))
    }

    // MARK: Whole responses (usage polls, token refresh, status)

    /// A complete, decoded upstream response.
    public struct CollectedResponse: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    /// Sends one request and collects the whole answer (gzip/deflate decoded), for the small
    /// JSON exchanges the gateway reads itself.
    public func collect(_ target: UpstreamTarget, method: HTTPMethod, path: String, headers: HTTPHeaders, body: [UInt8]? = nil,
                        on eventLoop: any EventLoop, limit: Int = 8 << 20) -> EventLoopFuture<CollectedResponse> {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        head.headers.replaceOrAdd(name: "host", value: target.hostHeader)
        head.headers.replaceOrAdd(name: "accept-encoding", value: "gzip, deflate")
        if let body { head.headers.replaceOrAdd(name: "content-length", value: String(body.count)) }
        let pool = pool(for: eventLoop)
        let request = head
        return eventLoop.flatSubmit {
            pool.acquire(target).flatMap { connection in
                let collector = ResponseCollector(promise: eventLoop.makePromise(), limit: limit, connection: connection)
                connection.execute(request, body: body.map { ByteBuffer(bytes: $0) }, delegate: collector) { pool.release($0) }
                return collector.promise.futureResult
            }
        }
    }
}
