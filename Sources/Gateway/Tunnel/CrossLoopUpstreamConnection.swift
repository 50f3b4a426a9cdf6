import HTTPWire
import NIOCore
import NIOHTTP1
import Synchronization
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
/// both are the same loop (then nothing is ever queued, so order is kept either way). Across
/// loops, the callbacks of one read (head, body, end) go over together, in order, in one task:
/// each task handed to another loop wakes its thread, which cost more than the callbacks.
private final class DelegateRelay: UpstreamResponseDelegate, Sendable {
    private typealias Call = @Sendable (any UpstreamResponseDelegate) -> Void

    private let delegate: NIOLoopBound<any UpstreamResponseDelegate>
    /// Calls waiting for the delegate's loop, and whether a task to run them is on its way.
    private let pending = Mutex<(calls: [Call], scheduled: Bool)>(([], false))

    init(_ delegate: NIOLoopBound<any UpstreamResponseDelegate>) {
        self.delegate = delegate
    }

    private func deliver(_ call: @escaping Call) {
        let delegate = delegate
        if delegate.eventLoop.inEventLoop { return call(delegate.value) }
        let schedule = pending.withLock { state -> Bool in
            state.calls.append(call)
            defer { state.scheduled = true }
            return !state.scheduled
        }
        guard schedule else { return }
        delegate.eventLoop.execute { [self] in
            let calls = pending.withLock { state -> [Call] in
                defer { state = ([], false) }
                return state.calls
            }
            for call in calls { call(self.delegate.value) }
        }
    }

    func upstreamReceivedHead(_ head: ReceivedResponseHead) { deliver { $0.upstreamReceivedHead(head) } }
    func upstreamReceivedBody(_ buffer: ByteBuffer) { deliver { $0.upstreamReceivedBody(buffer) } }
    func upstreamFinished() { deliver { $0.upstreamFinished() } }
    func upstreamFailed(_ error: UpstreamError) { deliver { $0.upstreamFailed(error) } }
    func upstreamReadComplete() { deliver { $0.upstreamReadComplete() } }
}
