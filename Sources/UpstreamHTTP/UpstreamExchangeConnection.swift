package import NIOCore
package import NIOHTTP1

/// What a proxy exchange needs from the connection carrying it; called on the exchange's loop.
package protocol UpstreamExchangeConnection: AnyObject, Sendable {
    /// Sends a request and streams the response to `delegate`, on the exchange's loop.
    func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate)
    func setReading(_ enabled: Bool)
    /// Gives up on the exchange in flight.
    func abandon()
    /// The connection was obtained but not used (the exchange ended meanwhile).
    func discardUnused()
    /// It carried an exchange before: a close before any answer may mean it died while idle,
    /// and the request is worth one retry on a new connection.
    var wasReused: Bool { get }
}

/// A pooled origin connection: it goes back to its event loop's pool when an exchange ends cleanly.
package final class PooledUpstreamConnection: UpstreamExchangeConnection {
    private let connection: UpstreamHTTPConnection
    private let pool: UpstreamConnectionPool
    package let wasReused: Bool

    package init(_ connection: UpstreamHTTPConnection, pool: UpstreamConnectionPool) {
        self.connection = connection
        self.pool = pool
        wasReused = connection.exchangesStarted > 0
    }

    package func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate) {
        let pool = pool
        connection.execute(head, body: body, delegate: delegate) { pool.release($0) }
    }

    package func setReading(_ enabled: Bool) { connection.setReading(enabled) }
    package func abandon() { connection.abandon() }
    package func discardUnused() { pool.release(connection) }
}
