import NIOCore
import NIOEmbedded
import NIOPosix
import TestSupport
import Testing
import Yamux

@Suite(.timeLimit(.minutes(3))) struct YamuxSessionHandlerTests {
    @Test func echoOverOneStream() async throws {
        let pair = try await YamuxPair.make()
        let stream = try await pair.clientSession.openCollectingStream()
        try await stream.channel.writeAndFlush(ByteBuffer(string: "hello, yamux")).get()
        let echoed = try await stream.collector.await { $0.bytes(12) }
        #expect(String(buffer: echoed) == "hello, yamux")
        try await stream.channel.close().get()
        await pair.close()
    }

    /// 1,000 streams at once, 1 MiB each way, every byte checked — with keepalive pings running,
    /// which must be answered in time although the connection is saturated.
    @Test func thousandConcurrentStreamsOfOneMebibyte() async throws {
        var busy = YamuxConfiguration()
        busy.keepAliveInterval = .seconds(1)
        busy.keepAliveTimeout = .seconds(5)
        // Its own event loop, so this gigabyte does not starve the connections of other tests.
        let ownGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { ownGroup.shutdownGracefully { _ in } }
        let pair = try await YamuxPair.make(serverConfiguration: busy, clientConfiguration: busy, group: ownGroup)
        let sessionErrors = Shared<[String]>([])
        try await pair.client.pipeline.addHandler(ErrorRecorder(sessionErrors)).get()
        try await pair.server.pipeline.addHandler(ErrorRecorder(sessionErrors)).get()
        let size = 1 << 20
        let base = pattern(stream: 0, count: size)
        func payload(_ index: Int) -> ByteBuffer {
            let offset = (index &* 4099) % size
            var buffer = base.getSlice(at: offset, length: size - offset)!
            var head = base.getSlice(at: 0, length: offset)!
            buffer.writeBuffer(&head)
            return buffer
        }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<1000 {
                group.addTask {
                    let stream = try await pair.clientSession.openCollectingStream()
                    let data = payload(index)
                    stream.channel.writeAndFlush(data, promise: nil)
                    try await stream.channel.close(mode: .output).get()
                    let echoed = try await stream.collector.await { $0.bytes(size) }
                    try await stream.collector.await { $0.closed.futureResult }
                    return echoed == data
                }
            }
            var matches = 0
            do {
                for try await match in group where match { matches += 1 }
            } catch {
                // Closing the connection fails every other stream, so the group cannot hang.
                try? await pair.client.close().get()
                throw error
            }
            #expect(matches == 1000)
        }
        #expect(sessionErrors.value.filter { !$0.hasPrefix("rtt ") } == [])
        let remaining = try await pair.clientSession.eventLoop.submit { pair.clientSession.value.openStreamCount }.get()
        #expect(remaining == 0, "every stream was cleaned up")
        await pair.close()
    }

    /// A reader that does not read stops its own stream at the window; other streams keep flowing.
    @Test func slowReaderStallsOnlyItsOwnStream() async throws {
        let serverCollectors = Shared<[NIOLoopBound<StreamCollector>]>([])
        let pair = try await YamuxPair.make(serverStreams: { channel in
            channel.setOption(.autoRead, value: serverCollectors.value.isEmpty ? false : true).flatMap {
                channel.eventLoop.makeCompletedFuture {
                    let collector = StreamCollector(eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(collector)
                    serverCollectors.update { $0.append(NIOLoopBound(collector, eventLoop: channel.eventLoop)) }
                }
            }
        })
        let slow = try await pair.clientSession.openCollectingStream()
        try await slow.channel.writeAndFlush(ByteBuffer(string: "x")).get()
        try await waitUntil("the server saw the stream") { !serverCollectors.value.isEmpty }
        let slowServer = serverCollectors.value[0]
        let blockedPromise = slow.channel.eventLoop.makePromise(of: Void.self)
        slow.channel.writeAndFlush(ByteBuffer(repeating: 1, count: 2 << 20), promise: blockedPromise)
        let blocked = blockedPromise.futureResult
        let blockedDone = Shared(false)
        blocked.whenComplete { _ in blockedDone.update { $0 = true } }

        let fast = try await pair.clientSession.openCollectingStream()
        try await fast.channel.writeAndFlush(ByteBuffer(repeating: 2, count: 4 << 20)).get()
        try await waitUntil("the server saw both streams") { serverCollectors.value.count >= 2 }
        let fastServer = serverCollectors.value[1]
        _ = try await fastServer.await { $0.bytes(4 << 20) }
        #expect(!blockedDone.value, "the slow stream is still waiting for window")
        #expect(try await slowServer.read { $0.received.readableBytes } == 0)

        try await setServerAutoRead(slowServer, pair: pair)
        _ = try await slowServer.await { $0.bytes((2 << 20) + 1) }
        try await blocked.get()
        await pair.close()
    }

    private func setServerAutoRead(_ collector: NIOLoopBound<StreamCollector>, pair: YamuxPair) async throws {
        let channel = try await collector.eventLoop.submit { collector.value.channel }.get()
        try await channel?.setOption(.autoRead, value: true).get()
    }

    @Test func keepAliveTimeoutIsDetectedWhenThePeerGoesSilent() async throws {
        // A TCP server that swallows everything and never answers a ping.
        let silent = try await ServerBootstrap(group: yamuxGroup)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let configuration = {
            var configuration = YamuxConfiguration()
            configuration.keepAliveInterval = .milliseconds(50)
            configuration.keepAliveTimeout = .milliseconds(100)
            return configuration
        }()
        let errors = Shared<[String]>([])
        let client = try await ClientBootstrap(group: yamuxGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(YamuxSessionHandler(role: .client, configuration: configuration, inboundStreamInitializer: nil))
                    try channel.pipeline.syncOperations.addHandler(ErrorRecorder(errors))
                }
            }
            .connect(host: "127.0.0.1", port: silent.localAddress!.port!).get()
        try await client.closeFuture.get()
        #expect(errors.value == ["yamux keepalive timeout: the peer stopped answering pings"])
    }

    @Test func pingsAreAnsweredAndMeasured() async throws {
        var configuration = YamuxConfiguration()
        configuration.keepAliveInterval = .milliseconds(20)
        let pair = try await YamuxPair.make(clientConfiguration: configuration)
        while try await pair.clientSession.eventLoop.submit({ pair.clientSession.value.lastRoundTripTime }).get() == nil {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(pair.client.isActive, "the server answers pings, so the session lives")
        await pair.close()
    }

    @Test func goAwayStopsNewStreamsButNotOpenOnes() async throws {
        let pair = try await YamuxPair.make()
        let open = try await pair.clientSession.openCollectingStream()
        // One round trip, so the server has accepted the stream before it goes away.
        try await open.channel.writeAndFlush(ByteBuffer(string: "first")).get()
        _ = try await open.collector.await { $0.bytes(5) }
        try await pair.serverSession.eventLoop.submit { pair.serverSession.value.goAway() }.get()
        try await open.channel.writeAndFlush(ByteBuffer(string: " still works")).get()
        let echoed = try await open.collector.await { $0.bytes(17) }
        #expect(String(buffer: echoed) == "first still works")
        var refused = false
        while !refused {
            do {
                // Streams opened before the GoAway arrives are reset by the server; after it, opening fails.
                let stream = try await pair.clientSession.openCollectingStream()
                try await stream.collector.await { $0.closed.futureResult }
            } catch let error as YamuxSessionError {
                refused = error == .remoteGoAway(.normal)
            } catch {
                continue
            }
        }
        #expect(refused)
        await pair.close()
    }

    /// Quiescing a session: GoAway to the peer, every open stream told, the streams in flight
    /// still served, and the connection closed after the last of them ends.
    @Test func quiescingDrainsTheOpenStreamsThenCloses() async throws {
        let told = Shared(0)
        let pair = try await YamuxPair.make(serverStreams: { channel in
            channel.setOption(.allowRemoteHalfClosure, value: true).flatMap {
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([QuiesceCounter(count: told), StreamEcho()])
                }
            }
        })
        var streams: [(channel: any Channel, collector: NIOLoopBound<StreamCollector>)] = []
        for index in 0..<2 {
            let stream = try await pair.clientSession.openCollectingStream()
            try await stream.channel.writeAndFlush(ByteBuffer(string: "stream \(index)")).get()
            _ = try await stream.collector.await { $0.bytes(8) }
            streams.append(stream)
        }
        // Streams share their connection's event loop: they have all been told when this returns.
        try await pair.server.eventLoop.submit { pair.server.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }.get()
        #expect(told.value == 2)
        // The GoAway left before this echo, so the client has read it when the echo is back.
        try await streams[0].channel.writeAndFlush(ByteBuffer(string: " more")).get()
        #expect(String(buffer: try await streams[0].collector.await { $0.bytes(13) }) == "stream 0 more")
        await #expect(throws: YamuxSessionError.remoteGoAway(.normal)) { _ = try await pair.clientSession.openCollectingStream() }
        try await streams[0].channel.close()
        try await streams[0].collector.await { $0.closed.futureResult }
        #expect(pair.client.isActive, "one stream is still open")
        try await streams[1].channel.close()
        try await pair.client.closeFuture.get()
        await pair.close()
    }

    @Test func resetReachesTheOtherSide() async throws {
        let serverCollectors = Shared<[NIOLoopBound<StreamCollector>]>([])
        let pair = try await YamuxPair.make(serverStreams: { channel in
            channel.eventLoop.makeCompletedFuture {
                let collector = StreamCollector(eventLoop: channel.eventLoop)
                try channel.pipeline.syncOperations.addHandler(collector)
                serverCollectors.update { $0.append(NIOLoopBound(collector, eventLoop: channel.eventLoop)) }
            }
        })
        let stream = try await pair.clientSession.openCollectingStream()
        try await stream.channel.writeAndFlush(ByteBuffer(string: "x")).get()
        try await waitUntil("the server saw the stream") { !serverCollectors.value.isEmpty }
        try await stream.channel.triggerUserOutboundEvent(YamuxStreamResetEvent()).get()
        let server = serverCollectors.value[0]
        try await server.await { $0.closed.futureResult }
        #expect(try await server.read { $0.errors.map { "\($0)" } } == ["the yamux stream was reset by the peer"])
        await pair.close()
    }

    /// The client half-closes; the server still answers; then it closes too.
    @Test func halfCloseKeepsTheOtherDirectionOpen() async throws {
        let pair = try await YamuxPair.make(serverStreams: { channel in
            channel.setOption(.allowRemoteHalfClosure, value: true).flatMap {
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ReplyAfterInputEnds()) }
            }
        })
        let stream = try await pair.clientSession.openCollectingStream()
        try await stream.channel.writeAndFlush(ByteBuffer(string: "question")).get()
        try await stream.channel.close(mode: .output).get()
        let reply = try await stream.collector.await { $0.bytes(14) }
        #expect(String(buffer: reply) == "answer:question")
        try await stream.collector.await { $0.closed.futureResult }
        #expect(try await stream.collector.read { $0.errors.isEmpty }, "both sides finished cleanly")
        await pair.close()
    }

    @Test func streamsAreRefusedWithoutAnInitializer() async throws {
        let pair = try await YamuxPair.make(serverStreams: nil)
        let stream = try await pair.clientSession.openCollectingStream()
        try await stream.collector.await { $0.closed.futureResult }
        #expect(try await stream.collector.read { $0.errors.map { "\($0)" } } == ["the yamux stream was reset by the peer"])
        await pair.close()
    }

    /// An HTTP chunk is three writes (size line, data, CRLF); flushed together they leave as one
    /// data frame, and every write's promise is kept.
    @Test func smallWritesFlushedTogetherLeaveAsOneFrame() throws {
        var quiet = YamuxConfiguration()
        quiet.keepAliveInterval = nil
        let session = YamuxSessionHandler(role: .client, configuration: quiet, inboundStreamInitializer: nil)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let opened = try session.openStream(initializer: nil)
        channel.embeddedEventLoop.run()
        let stream = try opened.wait()
        let pieces = ["1a\r\n", "twenty-six bytes of answer", "\r\n"]
        let promises = pieces.map { _ in channel.eventLoop.makePromise(of: Void.self) }
        for (piece, promise) in zip(pieces, promises) { stream.write(ByteBuffer(string: piece), promise: promise) }
        stream.flush()
        channel.embeddedEventLoop.run()

        var wire = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&part) }
        var parser = YamuxFrameParser(maximumPayload: 1 << 20)
        var frames: [YamuxFrame] = []
        while let frame = try parser.next(from: &wire) { frames.append(frame) }
        let data = frames.filter { $0.header.type == .data }
        #expect(data.count == 1, "\(frames)")
        #expect(data.first.flatMap { $0.payload.map { String(buffer: $0) } } == pieces.joined())
        for promise in promises { try promise.futureResult.wait() }
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test(arguments: [
        ([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0] as [UInt8], "unsupported version 1"),
        ([0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], "unknown frame type 7"),
        ([0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 65], "frame for unknown stream 9"),
        ([0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0], "this side's parity"),
    ])
    func protocolViolationsEndTheSessionWithGoAway(bytes: [UInt8], detail: String) async throws {
        let errors = Shared<[String]>([])
        let listener = try await ServerBootstrap(group: yamuxGroup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No keepalive: a ping must not get ahead of the GoAway this test expects.
                    var quiet = YamuxConfiguration()
                    quiet.keepAliveInterval = nil
                    try channel.pipeline.syncOperations.addHandler(YamuxSessionHandler(
                        role: .server, configuration: quiet, inboundStreamInitializer: { _ in channel.eventLoop.makeSucceededVoidFuture() }))
                    try channel.pipeline.syncOperations.addHandler(ErrorRecorder(errors))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let received = Shared<[UInt8]>([])
        let raw = try await ClientBootstrap(group: yamuxGroup)
            .channelInitializer { $0.pipeline.addHandler(ByteRecorder(received)) }
            .connect(host: "127.0.0.1", port: listener.localAddress!.port!).get()
        try await raw.writeAndFlush(ByteBuffer(bytes: bytes)).get()
        try await raw.closeFuture.get()
        #expect(received.value == [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "GoAway with the protocol-error code")
        #expect(errors.value.count == 1 && errors.value[0].contains(detail), "\(errors.value)")
    }
}

final class ErrorRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let errors: Shared<[String]>
    init(_ errors: Shared<[String]>) { self.errors = errors }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let ping = event as? YamuxPingMeasured { errors.update { $0.append("rtt \(ping.roundTripTime.nanoseconds / 1_000_000) ms") } }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.update { $0.append("\(error)") }
    }
}

final class ByteRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let bytes: Shared<[UInt8]>
    init(_ bytes: Shared<[UInt8]>) { self.bytes = bytes }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes.update { $0 += buffer.readableBytesView }
    }
}

/// Collects the request until the input ends, then answers and closes.
final class ReplyAfterInputEnds: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var request = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        request.writeBuffer(&buffer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return }
        var reply = ByteBuffer(string: "answer:")
        reply.writeBuffer(&request)
        context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// Counts the `ChannelShouldQuiesceEvent`s a stream sees.
final class QuiesceCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let count: Shared<Int>

    init(count: Shared<Int>) {
        self.count = count
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { count.update { $0 += 1 } }
        context.fireUserInboundEventTriggered(event)
    }
}
