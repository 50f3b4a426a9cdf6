package import NIOCore

/// The idle connections of one event loop: sockets to upstream origins, or the streams of one
/// reverse tunnel.
/// Confined to `eventLoop`, which every call checks: the pool is shared through the client's
/// table and tunnel sessions, from any thread, but used only from its own loop.
package final class UpstreamConnectionPool: @unchecked Sendable {
    package let eventLoop: any EventLoop
    private let idleTimeout: TimeAmount
    /// Idle connections kept per target; beyond it a burst's extra connections are closed.
    private let maximumIdle: Int
    /// Makes a new connection; nil once its maker is gone (a client may be dropped — a command's
    /// last request — while an exchange still ends here).
    private let connect: (UpstreamTarget) -> EventLoopFuture<UpstreamHTTPConnection>?
    private var idle: [UpstreamTarget: [UpstreamHTTPConnection]] = [:]
    private var closed = false

    package init(eventLoop: any EventLoop, idleTimeout: TimeAmount, maximumIdle: Int = 64,
         connect: @escaping (UpstreamTarget) -> EventLoopFuture<UpstreamHTTPConnection>?) {
        self.eventLoop = eventLoop
        self.idleTimeout = idleTimeout
        self.maximumIdle = maximumIdle
        self.connect = connect
    }

    /// A connection to `target`: the most recently used idle one, or a new one (always a new one
    /// with `fresh`, to retry a request whose reused connection turned out dead).
    package func acquire(_ target: UpstreamTarget, fresh: Bool = false) -> EventLoopFuture<UpstreamHTTPConnection> {
        eventLoop.preconditionInEventLoop()
        while !fresh, let connection = idle[target]?.popLast() {
            connection.idleExpiry?.cancel()
            connection.idleExpiry = nil
            if connection.isReusable { return eventLoop.makeSucceededFuture(connection) }
            connection.channel.close(promise: nil)
        }
        guard !closed, let connecting = connect(target) else { return eventLoop.makeFailedFuture(UpstreamError(.connect, "the connection pool was shut down")) }
        return connecting
    }

    /// Takes back a connection whose exchange finished cleanly.
    package func release(_ connection: UpstreamHTTPConnection) {
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

    /// Idle connections kept now, over all targets; call on the pool's loop.
    package var idleCount: Int {
        eventLoop.preconditionInEventLoop()
        return idle.values.reduce(0) { $0 + $1.count }
    }

    package func closeAll() {
        eventLoop.preconditionInEventLoop()
        closed = true
        for connection in idle.values.joined() {
            connection.idleExpiry?.cancel()
            connection.channel.close(promise: nil)
        }
        idle = [:]
    }
}
