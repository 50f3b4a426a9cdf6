import NIOCore
import NIOPosix
import TestSupport
import Yamux

let yamuxGroup = MultiThreadedEventLoopGroup.singleton

/// Echoes stream bytes back; closes its output when the input ends.
final class StreamEcho: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(mode: .output, promise: nil) }
    }
}

/// Collects what a stream receives and how it ends.
final class StreamCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private(set) var received = ByteBuffer()
    private(set) var errors: [any Error] = []
    private(set) var channel: (any Channel)?
    private(set) var sawInputClosed = false
    let closed: EventLoopPromise<Void>
    /// Completes when the peer half-closes (with allowRemoteHalfClosure) or the stream ends.
    let inputEnded: EventLoopPromise<Void>
    private var waiting: (count: Int, promise: EventLoopPromise<ByteBuffer>)?

    init(eventLoop: any EventLoop) {
        closed = eventLoop.makePromise()
        inputEnded = eventLoop.makePromise()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
    }

    func bytes(_ count: Int) -> EventLoopFuture<ByteBuffer> {
        let promise = closed.futureResult.eventLoop.makePromise(of: ByteBuffer.self)
        if received.readableBytes >= count {
            promise.succeed(received)
        } else if ended {
            promise.fail(ChannelError.eof)
        } else {
            waiting = (count, promise)
        }
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.writeBuffer(&buffer)
        if let waiting, received.readableBytes >= waiting.count {
            self.waiting = nil
            waiting.promise.succeed(received)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            sawInputClosed = true
            inputEnded.succeed()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
    }

    /// A stream that dies before it was ever active never sees channelInactive.
    func handlerRemoved(context: ChannelHandlerContext) {
        end()
    }

    private var ended = false

    private func end() {
        guard !ended else { return }
        ended = true
        waiting?.promise.fail(ChannelError.eof)
        waiting = nil
        if !sawInputClosed { inputEnded.succeed() }
        closed.succeed()
    }
}

/// A connected pair of yamux sessions over loopback TCP.
struct YamuxPair {
    let server: any Channel
    let client: any Channel
    let listener: any Channel
    let serverSession: NIOLoopBound<YamuxSessionHandler>
    let clientSession: NIOLoopBound<YamuxSessionHandler>

    static func make(serverConfiguration: YamuxConfiguration = YamuxConfiguration(),
                     clientConfiguration: YamuxConfiguration = YamuxConfiguration(),
                     serverStreams: YamuxSessionHandler.StreamInitializer? = { channel in
                         channel.setOption(.allowRemoteHalfClosure, value: true).flatMap {
                             channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(StreamEcho()) }
                         }
                     },
                     clientStreams: YamuxSessionHandler.StreamInitializer? = nil,
                     group: any EventLoopGroup = yamuxGroup) async throws -> YamuxPair {
        let accepted = Shared<[NIOLoopBound<YamuxSessionHandler>]>([])
        let serverChannels = Shared<[any Channel]>([])
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = YamuxSessionHandler(role: .server, configuration: serverConfiguration, inboundStreamInitializer: serverStreams)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    accepted.update { $0.append(NIOLoopBound(handler, eventLoop: channel.eventLoop)) }
                    serverChannels.update { $0.append(channel) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let clientHandler = Shared<[NIOLoopBound<YamuxSessionHandler>]>([])
        let client = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = YamuxSessionHandler(role: .client, configuration: clientConfiguration, inboundStreamInitializer: clientStreams)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    clientHandler.update { $0.append(NIOLoopBound(handler, eventLoop: channel.eventLoop)) }
                }
            }
            .connect(host: "127.0.0.1", port: listener.localAddress!.port!).get()
        try await waitUntil("the server accepted the session") { !accepted.value.isEmpty }
        return YamuxPair(server: serverChannels.value[0], client: client, listener: listener,
                         serverSession: accepted.value[0], clientSession: clientHandler.value[0])
    }

    func close() async {
        try? await client.close().get()
        try? await listener.close().get()
    }
}

extension NIOLoopBound where Value == YamuxSessionHandler {
    /// Opens a stream with a collector (and optionally more handlers) on it.
    func openCollectingStream(autoRead: Bool = true, halfClosure: Bool = true) async throws -> (channel: any Channel, collector: NIOLoopBound<StreamCollector>) {
        let collectors = Shared<[NIOLoopBound<StreamCollector>]>([])
        let channel = try await eventLoop.flatSubmit {
            do {
                return try self.value.openStream { channel in
                    channel.setOption(.allowRemoteHalfClosure, value: halfClosure).flatMap {
                        channel.setOption(.autoRead, value: autoRead)
                    }.flatMap {
                        channel.eventLoop.makeCompletedFuture {
                            let collector = StreamCollector(eventLoop: channel.eventLoop)
                            try channel.pipeline.syncOperations.addHandler(collector)
                            collectors.update { $0.append(NIOLoopBound<StreamCollector>(collector, eventLoop: channel.eventLoop)) }
                        }
                    }
                }
            } catch {
                return self.eventLoop.makeFailedFuture(error)
            }
        }.get()
        return (channel, collectors.value[0])
    }
}

extension NIOLoopBound where Value == StreamCollector {
    func await<T: Sendable>(_ body: @escaping @Sendable (StreamCollector) -> EventLoopFuture<T>) async throws -> T {
        try await eventLoop.flatSubmit { body(self.value) }.get()
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (StreamCollector) -> T) async throws -> T {
        try await eventLoop.submit { body(self.value) }.get()
    }
}

/// A deterministic byte pattern per stream, so misrouted or reordered bytes are caught.
func pattern(stream: Int, count: Int) -> ByteBuffer {
    var buffer = ByteBuffer()
    var state = UInt32(truncatingIfNeeded: stream &* 2_654_435_761 &+ 1)
    // Raw memory: a per-byte writeInteger in a debug build is slow enough to starve the sessions.
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
        for index in 0..<count {
            state = state &* 1_103_515_245 &+ 12_345
            bytes[index] = UInt8(truncatingIfNeeded: state >> 16)
        }
        return count
    }
    return buffer
}
