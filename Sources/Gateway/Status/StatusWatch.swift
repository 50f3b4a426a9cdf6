import NIOCore
import NIOHTTP1
import PoolCore

/// `GET /ocm/v1/status?watch=true` (§5.4): the status now, then one NDJSON line whenever a
/// status notification changes what this user sees. Ends at shutdown or when the client leaves.
/// Confined to the client's event loop; the listening task hops there for every frame.
final class StatusWatch {
    private let runtime: GatewayRuntime
    private let user: AuthenticatedUser
    private let eventLoop: any EventLoop
    private weak var responder: (any ClientResponder)?
    private var gate = StatusFrameGate()
    private var listener: Task<Void, Never>?

    init(runtime: GatewayRuntime, user: AuthenticatedUser, eventLoop: any EventLoop, responder: any ClientResponder) {
        self.runtime = runtime
        self.user = user
        self.eventLoop = eventLoop
        self.responder = responder
    }

    func start() {
        responder?.sendStreamHead(contentType: "application/json")
        let changes = runtime.statusSignal.subscribe()
        running = true
        writeIfChanged()
        // Strong until `stop` cancels the task (the handler stops it when the client leaves).
        let watch = NIOLoopBound(self, eventLoop: eventLoop)
        listener = Task {
            for await _ in changes {
                watch.eventLoop.execute { watch.value.writeIfChanged() }
            }
            watch.eventLoop.execute { watch.value.finish() }
        }
    }

    func stop() {
        running = false
        listener?.cancel()
        listener = nil
    }

    private var running = false

    private func writeIfChanged() {
        guard running, let responder else { return }
        if let status = gate.next(runtime.aggregate(for: user)) {
            var buffer = ByteBuffer()
            buffer.writeString(status.json + "\n")
            responder.sendBody(buffer)
        }
    }

    private func finish() {
        guard running else { return }
        running = false
        listener = nil
        responder?.sendEnd()
    }
}
