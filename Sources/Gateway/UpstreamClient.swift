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

        public init(connect: TimeAmount = .seconds(10), read: TimeAmount = .seconds(300), poolIdle: TimeAmount = .seconds(60)) {
            self.connect = connect
            self.read = read
            self.poolIdle = poolIdle
        }
    }

    let timeouts: Timeouts
    private let pools = Mutex<[ObjectIdentifier: UpstreamConnectionPool]>([:])

    public init(timeouts: Timeouts = Timeouts()) {
        self.timeouts = timeouts
    }

    func pool(for eventLoop: any EventLoop) -> UpstreamConnectionPool {
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
    func connect(_ target: UpstreamTarget, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamHTTPConnection> {
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
    static func addHTTPClientPipeline(to channel: any Channel, readTimeout: TimeAmount) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
        try sync.addHandler(IdleStateHandler(readTimeout: readTimeout))
        try sync.addHandler(UpstreamHTTPClientHandler())
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

/// The idle connections of one event loop: sockets to upstream origins, or the streams of one
/// reverse tunnel.
final class UpstreamConnectionPool: @unchecked Sendable {
    // Touched only on `eventLoop`.
    let eventLoop: any EventLoop
    private let idleTimeout: TimeAmount
    /// Idle connections kept per target; beyond it a burst's extra connections are closed.
    private let maximumIdle: Int
    /// Makes a new connection; nil once its maker is gone (a client may be dropped — a command's
    /// last request — while an exchange still ends here).
    private let connect: (UpstreamTarget) -> EventLoopFuture<UpstreamHTTPConnection>?
    private var idle: [UpstreamTarget: [UpstreamHTTPConnection]] = [:]
    private var closed = false

    init(eventLoop: any EventLoop, idleTimeout: TimeAmount, maximumIdle: Int = 64,
         connect: @escaping (UpstreamTarget) -> EventLoopFuture<UpstreamHTTPConnection>?) {
        self.eventLoop = eventLoop
        self.idleTimeout = idleTimeout
        self.maximumIdle = maximumIdle
        self.connect = connect
    }

    /// A connection to `target`: the most recently used idle one, or a new one.
    func acquire(_ target: UpstreamTarget) -> EventLoopFuture<UpstreamHTTPConnection> {
        eventLoop.preconditionInEventLoop()
        while let connection = idle[target]?.popLast() {
            connection.idleExpiry?.cancel()
            connection.idleExpiry = nil
            if connection.isReusable { return eventLoop.makeSucceededFuture(connection) }
            connection.channel.close(promise: nil)
        }
        guard !closed, let connecting = connect(target) else { return eventLoop.makeFailedFuture(UpstreamError(.connect, "the connection pool was shut down")) }
        return connecting
    }

    /// Takes back a connection whose exchange finished cleanly.
    func release(_ connection: UpstreamHTTPConnection) {
        eventLoop.preconditionInEventLoop()
        let target = connection.target
        guard !closed, connection.isReusable, idle[target, default: []].count < maximumIdle else { return connection.channel.close(promise: nil) }
        connection.setReading(true)
        connection.idleExpiry = eventLoop.scheduleTask(in: idleTimeout) { [weak self] in
            self?.idle[target]?.removeAll { $0 === connection }
            connection.channel.close(promise: nil)
        }
        idle[target, default: []].append(connection)
    }

    func closeAll() {
        closed = true
        for connection in idle.values.joined() {
            connection.idleExpiry?.cancel()
            connection.channel.close(promise: nil)
        }
        idle = [:]
    }
}

/// Gathers a whole response for `UpstreamClient.collect`.
private final class ResponseCollector: UpstreamResponseDelegate {
    let promise: EventLoopPromise<UpstreamClient.CollectedResponse>
    private let limit: Int
    private let connection: UpstreamHTTPConnection
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var inflater: ZlibInflater?

    init(promise: EventLoopPromise<UpstreamClient.CollectedResponse>, limit: Int, connection: UpstreamHTTPConnection) {
        self.promise = promise
        self.limit = limit
        self.connection = connection
    }

    func upstreamReceivedHead(_ head: HTTPResponseHead) {
        self.head = head
        inflater = ZlibInflater(contentEncoding: head.headers.first(name: "content-encoding"))
    }

    func upstreamReceivedBody(_ buffer: ByteBuffer) {
        do {
            if let inflater {
                body += try inflater.inflate(Array(buffer.readableBytesView))
            } else {
                body += buffer.readableBytesView
            }
        } catch {
            connection.abandon()
            return promise.fail(UpstreamError(.malformedResponse, "cannot decode the upstream body: \(error)"))
        }
        if body.count > limit {
            connection.abandon()
            promise.fail(UpstreamError(.malformedResponse, "upstream response larger than \(limit) bytes"))
        }
    }

    func upstreamFinished() {
        guard let head else { return promise.fail(UpstreamError(.malformedResponse, "no response head")) }
        var headers = head.headers
        if inflater != nil {
            headers.remove(name: "content-encoding")
            headers.remove(name: "content-length")
        }
        promise.succeed(.init(status: Int(head.status.code), headers: headers, body: body))
    }

    func upstreamFailed(_ error: UpstreamError) {
        promise.fail(error)
    }
}
