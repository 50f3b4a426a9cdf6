// The benchmarks' load generator: HTTP requests and Responses WebSocket turns over many
// connections on one event loop of its own, each connection's turns back to back (or paced).
public import NIOCore
import NIOHTTP1
public import NIOPosix
import Synchronization

/// The load generator's own event loop, apart from whatever it measures.
public let loadGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

public struct LoadResult: Sendable {
    public var firstByteLatencies: [Double]
    public var requests: Int
    public var bytes: Int
    public var duration: Double
    /// Answers other than 200, and connections that failed.
    public var failures: Int

    public var requestsPerSecond: Double { Double(requests) / duration }
    public var mebibytesPerSecond: Double { Double(bytes) / duration / 1_048_576 }
    public var bytesPerRequest: Int { requests > 0 ? bytes / requests : 0 }

    /// Two measurements of the same path as one.
    public func merged(with other: LoadResult) -> LoadResult {
        LoadResult(firstByteLatencies: firstByteLatencies + other.firstByteLatencies, requests: requests + other.requests, bytes: bytes + other.bytes,
                   duration: duration + other.duration, failures: failures + other.failures)
    }

    public func ttfb(_ quantile: Double) -> Double {
        let sorted = firstByteLatencies.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]
    }
}

final class Tally: Sendable {
    let state = Mutex<(latencies: [Double], requests: Int, bytes: Int, failures: Int)>(([], 0, 0, 0))

    /// Waits for the run's connections to end; their sums over the time that took.
    func result(waitingFor channels: [any Channel]) async throws -> LoadResult {
        let start = NIODeadline.now()
        for channel in channels { try await channel.closeFuture.get() }
        let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        return state.withLock { LoadResult(firstByteLatencies: $0.latencies, requests: $0.requests, bytes: $0.bytes, duration: elapsed, failures: $0.failures) }
    }
}

/// One load connection's turns, over HTTP or WebSocket: each turn's time to first byte, the
/// bytes, and how the connection ended. Added to the run's tally once, when it is done.
final class TurnCounter {
    let deadline: NIODeadline
    private let tally: Tally
    /// Each connection's first turn waits a random part of the stagger.
    private let firstDelay: TimeAmount
    /// Between a turn's end and the next one (paced load); zero sends at once.
    private let pause: TimeAmount
    private var sentAt = NIODeadline.now()
    private var sawFirstByte = false
    private var latencies: [Double] = []
    private var turns = 0
    private var bytes = 0
    private var failures = 0
    private var recorded = false

    init(deadline: NIODeadline, tally: Tally, stagger: TimeAmount, pause: TimeAmount = .zero) {
        self.deadline = deadline
        self.tally = tally
        self.pause = pause
        firstDelay = .nanoseconds(Int64.random(in: 0...max(0, stagger.nanoseconds)))
    }

    /// Starts the first turn, after this connection's share of the stagger.
    func startFirstTurn(on eventLoop: any EventLoop, _ send: @escaping () -> Void) {
        guard firstDelay > .zero else { return send() }
        eventLoop.assumeIsolated().scheduleTask(in: firstDelay) { send() }
    }

    func turnStarted() {
        sawFirstByte = false
        sentAt = .now()
    }

    func received(_ count: Int) {
        if !sawFirstByte {
            sawFirstByte = true
            latencies.append(Double((NIODeadline.now() - sentAt).nanoseconds) / 1e9)
        }
        bytes += count
    }

    func answerFailed() {
        failures += 1
    }

    /// A turn ended: starts the next (after the pause) with `send`, or, when the run is over for
    /// this connection, returns false for the caller to close it.
    func turnEnded(on eventLoop: any EventLoop, _ send: @escaping () -> Void) -> Bool {
        turns += 1
        guard NIODeadline.now() < deadline else {
            record()
            return false
        }
        if pause > .zero { eventLoop.assumeIsolated().scheduleTask(in: pause) { send() } } else { send() }
        return true
    }

    /// The connection ended or broke; before the deadline, or `failed`, that is a failure.
    func connectionEnded(failed: Bool) {
        guard !recorded else { return }
        if failed || NIODeadline.now() < deadline { failures += 1 }
        record()
    }

    private func record() {
        guard !recorded else { return }
        recorded = true
        let (latencies, turns, bytes, failures) = (self.latencies, self.turns, self.bytes, self.failures)
        tally.state.withLock { $0.latencies += latencies; $0.requests += turns; $0.bytes += bytes; $0.failures += failures }
    }
}

/// `concurrency` connections, each sending the request again as soon as the previous answer ended
/// (or `pause` after it).
/// - Parameter stagger: each connection's first request waits a random part of this, so paced
///   turns do not all start (and keep starting) in the same millisecond, which no real set of
///   Codex sessions does.
public func runLoad(port: Int, path: String, headers: [(String, String)], body: String, duration: Double, concurrency: Int,
                    stagger: TimeAmount = .zero, pause: TimeAmount = .zero) async throws -> LoadResult {
    let tally = Tally()
    let deadline = NIODeadline.now() + .milliseconds(Int64(duration * 1000))
    var channels: [any Channel] = []
    for _ in 0..<concurrency {
        let channel = try await ClientBootstrap(group: loadGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(LoadConnection(port: port, path: path, headers: headers, body: body,
                                                                                  counter: TurnCounter(deadline: deadline, tally: tally, stagger: stagger, pause: pause)))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        channels.append(channel)
    }
    return try await tally.result(waitingFor: channels)
}

final class LoadConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let head: HTTPRequestHead
    let body: ByteBuffer
    let counter: TurnCounter

    init(port: Int, path: String, headers: [(String, String)], body: String, counter: TurnCounter) {
        var fields = HTTPHeaders(headers)
        fields.add(name: "host", value: "127.0.0.1:\(port)")
        fields.add(name: "content-type", value: "application/json")
        fields.add(name: "accept", value: "text/event-stream")
        fields.add(name: "content-length", value: String(body.utf8.count))
        head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: fields)
        self.body = ByteBuffer(string: body)
        self.counter = counter
    }

    func channelActive(context: ChannelHandlerContext) {
        counter.startFirstTurn(on: context.eventLoop) { self.send(context: context) }
        context.fireChannelActive()
    }

    func send(context: ChannelHandlerContext) {
        counter.turnStarted()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status != .ok { counter.answerFailed() }
        case .body(let buffer):
            counter.received(buffer.readableBytes)
        case .end:
            if !counter.turnEnded(on: context.eventLoop, { self.send(context: context) }) { context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        counter.connectionEnded(failed: true)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter.connectionEnded(failed: false)
        context.fireChannelInactive()
    }
}

public func freePort() async throws -> Int {
    let channel = try await ServerBootstrap(group: loadGroup).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

public func waitUntilListening(port: Int) async throws {
    for _ in 0..<200 {
        if (try? await ClientBootstrap(group: loadGroup).connect(host: "127.0.0.1", port: port).get().close()) != nil { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw ChannelError.connectTimeout(.seconds(5))
}
