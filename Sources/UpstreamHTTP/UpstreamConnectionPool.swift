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
    /// Per target (a pool serves one or two), the idle connections, most recently used last,
    /// each with the time it came back. A list searched in place: hashing a target (strings)
    /// cost more than comparing it, and this runs twice per request.
    private var idle: [(target: UpstreamTarget, connections: [(connection: UpstreamHTTPConnection, since: NIODeadline)])] = []
    /// One timer for the whole pool closes connections idle too long (not one per connection:
    /// scheduling and cancelling a task for every request was measurable).
    private var sweep: Scheduled<Void>?
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
        if !fresh, let connection = takeIdle(target) { return eventLoop.makeSucceededFuture(connection) }
        guard !closed, let connecting = connect(target) else { return eventLoop.makeFailedFuture(UpstreamError(.connect, "the connection pool was shut down")) }
        return connecting
    }

    /// A kept-alive connection to `target` ready for another exchange, if one is idle: what
    /// most requests get, without a future made for it.
    package func takeIdle(_ target: UpstreamTarget) -> UpstreamHTTPConnection? {
        eventLoop.preconditionInEventLoop()
        guard let index = idle.firstIndex(where: { $0.target == target }) else { return nil }
        while let (connection, _) = idle[index].connections.popLast() {
            if connection.isReusable { return connection }
            connection.channel.close(promise: nil)
        }
        return nil
    }

    /// Takes back a connection whose exchange finished cleanly.
    package func release(_ connection: UpstreamHTTPConnection) {
        eventLoop.preconditionInEventLoop()
        guard !closed, connection.isReusable else { return connection.channel.close(promise: nil) }
        let index: Int
        if let existing = idle.firstIndex(where: { $0.target == connection.target }) {
            index = existing
        } else {
            idle.append((connection.target, []))
            index = idle.count - 1
        }
        guard idle[index].connections.count < maximumIdle else { return connection.channel.close(promise: nil) }
        connection.setReading(true)
        idle[index].connections.append((connection, .now()))
        if sweep == nil { scheduleSweep() }
    }

    /// Closes what sat idle longer than the timeout, then looks again while anything is idle.
    private func scheduleSweep() {
        sweep = eventLoop.scheduleTask(in: .nanoseconds(idleTimeout.nanoseconds / 2)) { [weak self] in
            guard let self else { return }
            sweep = nil
            let expired = NIODeadline.now() - idleTimeout
            for index in idle.indices {
                // Oldest first: the expired ones are a prefix.
                let stale = idle[index].connections.prefix { $0.since <= expired }
                for (connection, _) in stale { connection.channel.close(promise: nil) }
                idle[index].connections.removeFirst(stale.count)
            }
            if idle.contains(where: { !$0.connections.isEmpty }) { scheduleSweep() }
        }
    }

    /// Idle connections kept now, over all targets; call on the pool's loop.
    package var idleCount: Int {
        eventLoop.preconditionInEventLoop()
        return idle.reduce(0) { $0 + $1.connections.count }
    }

    package func closeAll() {
        eventLoop.preconditionInEventLoop()
        closed = true
        sweep?.cancel()
        sweep = nil
        for (_, connections) in idle {
            for (connection, _) in connections { connection.channel.close(promise: nil) }
        }
        idle = []
    }
}
