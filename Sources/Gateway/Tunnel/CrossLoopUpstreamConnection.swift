import HTTPWire
import NIOCore
import NIOHTTP1
import UpstreamHTTP

/// A connection that may live on another event loop than its exchange (a tunnel stream is on
/// its session's): calls go over to that loop and response callbacks come back, in order, to
/// the exchange's. After a clean exchange it goes where `afterUse` says: back to its pool, or
/// closed (a dedicated socket for a long-lived status stream).
final class CrossLoopUpstreamConnection: UpstreamExchangeConnection {
    private let connection: UpstreamHTTPConnection
    private let callerLoop: any EventLoop
    private let afterUse: @Sendable (UpstreamHTTPConnection) -> Void
    let wasReused: Bool

    /// - Parameter wasReused: read on the connection's own loop, where it was handed out.
    init(_ connection: UpstreamHTTPConnection, callerLoop: any EventLoop, wasReused: Bool = false,
         afterUse: @escaping @Sendable (UpstreamHTTPConnection) -> Void = { $0.channel.close(promise: nil) }) {
        self.connection = connection
        self.callerLoop = callerLoop
        self.wasReused = wasReused
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
        let connection = connection
        connection.channel.eventLoop.execute { connection.setReading(enabled) }
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

    func upstreamReceivedHead(_ head: ReceivedResponseHead) { deliver { $0.upstreamReceivedHead(head) } }
    func upstreamReceivedBody(_ buffer: ByteBuffer) { deliver { $0.upstreamReceivedBody(buffer) } }
    func upstreamFinished() { deliver { $0.upstreamFinished() } }
    func upstreamFailed(_ error: UpstreamError) { deliver { $0.upstreamFailed(error) } }
    func upstreamReadComplete() { deliver { $0.upstreamReadComplete() } }
}
