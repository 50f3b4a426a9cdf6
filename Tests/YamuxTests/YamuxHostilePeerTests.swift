import NIOCore
import NIOPosix
import TestSupport
import Testing
import Yamux

/// A peer that opens streams without end, or floods pings and never reads our answers: this
/// side's memory stays bounded and its other streams and sessions keep working.
@Suite(.timeLimit(.minutes(3))) struct YamuxHostilePeerTests {
    /// A yamux server session whose streams echo, with a small socket send buffer so that
    /// unread output backs up in the process rather than in the kernel.
    struct Server {
        let listener: any Channel
        let sessions: Shared<[any Channel]>
        let refused: Shared<Int>

        static func start(_ configuration: YamuxConfiguration) async throws -> Server {
            let sessions = Shared<[any Channel]>([])
            let refused = Shared(0)
            let listener = try await ServerBootstrap(group: yamuxGroup)
                .childChannelOption(.socketOption(.so_sndbuf), value: 4096)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let session = YamuxSessionHandler(role: .server, configuration: configuration) { stream in
                            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(StreamEcho()) }
                        }
                        try channel.pipeline.syncOperations.addHandler(session)
                        try channel.pipeline.syncOperations.addHandler(RefusalCounter(refused))
                        sessions.update { $0.append(channel) }
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return Server(listener: listener, sessions: sessions, refused: refused)
        }

        var port: Int { listener.localAddress!.port! }
    }

    final class RefusalCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let refused: Shared<Int>
        init(_ refused: Shared<Int>) { self.refused = refused }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is YamuxStreamRefused { refused.update { $0 += 1 } }
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// A raw peer: writes frames, and reads them back only when asked.
    final class RawPeer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let continuation: AsyncStream<YamuxFrame>.Continuation
        let frames: AsyncStream<YamuxFrame>
        private var parser = YamuxFrameParser(maximumPayload: 1 << 20)
        private var pending = ByteBuffer()

        init() {
            (frames, continuation) = AsyncStream<YamuxFrame>.makeStream()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            pending.writeBuffer(&bytes)
            while let frame = try? parser.next(from: &pending) { continuation.yield(frame) }
            pending.discardReadBytes()
        }

        func channelInactive(context: ChannelHandlerContext) {
            continuation.finish()
        }
    }

    static func connect(_ port: Int, peer: RawPeer, autoRead: Bool = true) async throws -> any Channel {
        try await ClientBootstrap(group: yamuxGroup)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(peer) } }
            .connect(host: "127.0.0.1", port: port).get()
    }

    static func send(_ frames: [YamuxFrame], on channel: any Channel) async throws {
        var buffer = ByteBuffer()
        for frame in frames { frame.write(to: &buffer) }
        try await channel.writeAndFlush(buffer)
    }

    @Test func streamsPastTheCapAreResetAndTheOthersKeepWorking() async throws {
        var configuration = YamuxConfiguration()
        configuration.maximumInboundStreams = 8
        configuration.keepAliveInterval = nil
        let server = try await Server.start(configuration)
        let peer = RawPeer()
        let channel = try await Self.connect(server.port, peer: peer)
        let ids = (0..<12).map { UInt32(2 * $0 + 1) }
        try await Self.send(ids.map { .windowUpdate($0, delta: 0, flags: .syn) }, on: channel)
        var acknowledged: Set<UInt32> = [], reset: Set<UInt32> = []
        var iterator = peer.frames.makeAsyncIterator()
        while acknowledged.count + reset.count < ids.count, let frame = await iterator.next() {
            if frame.header.flags.contains(.ack) { acknowledged.insert(frame.header.streamID) }
            if frame.header.flags.contains(.rst) { reset.insert(frame.header.streamID) }
        }
        #expect(acknowledged == Set(ids.prefix(8)))
        #expect(reset == Set(ids.suffix(4)))
        #expect(server.refused.value == 4)
        // A stream within the cap is served: its data comes back.
        try await Self.send([.data(1, ByteBuffer(string: "still here"))], on: channel)
        var echoed = ""
        while !echoed.contains("still here"), let frame = await iterator.next() {
            if frame.header.type == .data, frame.header.streamID == 1, let payload = frame.payload { echoed += String(buffer: payload) }
        }
        #expect(echoed == "still here")
        try await channel.close()
        try await server.listener.close()
    }

    @Test func aPingFloodFromAPeerThatNeverReadsDoesNotGrowOurOutput() async throws {
        var configuration = YamuxConfiguration()
        configuration.keepAliveInterval = nil
        let server = try await Server.start(configuration)
        // The flooder reads nothing at all.
        let flooder = try await Self.connect(server.port, peer: RawPeer(), autoRead: false)
        let pings = (0..<2048).map { YamuxFrame.ping(UInt32($0), flags: .syn) }
        var largest = 0
        // 300 batches of 2048 pings (7 MiB), each written without waiting for the kernel to take it.
        for _ in 0..<300 {
            var buffer = ByteBuffer()
            for frame in pings { frame.write(to: &buffer) }
            flooder.writeAndFlush(buffer, promise: nil)
            if let session = server.sessions.value.first {
                largest = max(largest, try await session.getOption(ChannelOptions.bufferedWritableBytes).get())
            }
            await Task.yield()
        }
        #expect(server.sessions.value.count == 1)
        // The limit (1 MiB) plus what one read can bring; without it this grows to the whole flood (7 MiB).
        #expect(largest < 2 << 20, "pongs queued for a peer that does not read: \(largest) bytes")

        // Another session meanwhile is served as usual.
        let peer = RawPeer()
        let other = try await Self.connect(server.port, peer: peer)
        try await Self.send([.windowUpdate(1, delta: 0, flags: .syn), .data(1, ByteBuffer(string: "hello"))], on: other)
        var echoed = ""
        var iterator = peer.frames.makeAsyncIterator()
        while !echoed.contains("hello"), let frame = await iterator.next() {
            if frame.header.type == .data, let payload = frame.payload { echoed += String(buffer: payload) }
        }
        #expect(echoed == "hello")
        try await other.close()
        flooder.close(promise: nil)
        try await server.listener.close()
    }
}
