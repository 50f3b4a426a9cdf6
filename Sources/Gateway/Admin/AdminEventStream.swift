import Foundation
import NIOCore
import NIOHTTP1
import PoolCore
import Storage

/// `GET /api/v1/events`: Server-Sent Events for the dashboard — a `snapshot` (the credentials and
/// live levels) at once and every 2 s, and a `request` for each finished request the user may see.
/// Confined to the client's event loop; ends when the client leaves or the server stops.
final class AdminEventStream {
    static let snapshotInterval: TimeAmount = .seconds(2)
    private let runtime: GatewayRuntime
    private let user: AuthenticatedUser
    private let eventLoop: any EventLoop
    private weak var responder: (any ClientResponder)?
    private var ticker: RepeatedTask?
    private var subscription: UInt64?
    private var running = false

    init(runtime: GatewayRuntime, user: AuthenticatedUser, eventLoop: any EventLoop, responder: any ClientResponder) {
        self.runtime = runtime
        self.user = user
        self.eventLoop = eventLoop
        self.responder = responder
    }

    func start() {
        responder?.sendStreamHead(contentType: "text/event-stream")
        running = true
        let stream = NIOLoopBound(self, eventLoop: eventLoop)
        let user = user
        subscription = runtime.requestFeed.subscribe { record in
            guard user.isAdmin || record.user == user.name else { return }
            stream.eventLoop.execute { stream.value.send("request", AdminAnswers.request(record)) }
        }
        ticker = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.snapshotInterval) { _ in
            stream.value.sendSnapshot()
        }
    }

    func stop() {
        running = false
        ticker?.cancel()
        ticker = nil
        if let subscription { runtime.requestFeed.unsubscribe(subscription) }
        subscription = nil
    }

    private func sendSnapshot() {
        let levels = runtime.metrics.levels
        var snapshot = AdminAPI.credentials(for: user, runtime: runtime).objectValue ?? [:]
        snapshot["in_flight"] = .integer(Int64(levels.inFlight))
        snapshot["websocket_sessions"] = .integer(Int64(levels.webSockets))
        snapshot["time"] = .number(runtime.now.timeIntervalSince1970)
        send("snapshot", .object(snapshot))
    }

    private func send(_ event: String, _ data: JSONValue) {
        guard running, let responder else { return }
        var buffer = ByteBuffer()
        buffer.writeString("event: \(event)\ndata: ")
        buffer.writeBytes(data.serialized)
        buffer.writeString("\n\n")
        responder.sendBody(buffer)
    }
}
