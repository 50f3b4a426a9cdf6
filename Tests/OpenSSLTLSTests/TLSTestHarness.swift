import NIOCore
import NIOPosix
import OpenSSLTLS
import TestSupport

let testGroup = MultiThreadedEventLoopGroup.singleton

/// Echoes every byte back.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Records what one side of a connection sees, with futures to wait on.
final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let handshake: EventLoopPromise<TLSHandshakeCompleted>
    let closed: EventLoopPromise<Void>
    private(set) var errors: [any Error] = []
    private(set) var channel: (any Channel)?
    private(set) var received = ByteBuffer()
    private var expectation: (count: Int, promise: EventLoopPromise<ByteBuffer>)?

    init(eventLoop: any EventLoop) {
        handshake = eventLoop.makePromise()
        closed = eventLoop.makePromise()
    }

    /// Completes once `count` bytes have arrived in total.
    func bytes(_ count: Int, on eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer> {
        let promise = eventLoop.makePromise(of: ByteBuffer.self)
        if received.readableBytes >= count {
            promise.succeed(received)
        } else {
            expectation = (count, promise)
        }
        return promise.futureResult
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted { handshake.succeed(completed) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.writeBuffer(&buffer)
        if let expectation, received.readableBytes >= expectation.count {
            self.expectation = nil
            expectation.promise.succeed(received)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
        handshake.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.ioOnClosedChannel)
        expectation?.promise.fail(ChannelError.ioOnClosedChannel)
        closed.succeed()
    }
}

/// A TLS echo server on 127.0.0.1:0; each accepted connection's recorder is kept.
func startEchoServer(_ context: OpenSSLContext, echo: Bool = true) async throws -> (channel: any Channel, port: Int) {
    let channel = try await ServerBootstrap(group: testGroup)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: context))
                if echo { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    return (channel, channel.localAddress!.port!)
}

/// Connects a TLS client and returns its channel and recorder.
func connectClient(_ context: OpenSSLContext, port: Int, serverName: String? = "localhost",
                   handshakeTimeout: TimeAmount = .seconds(10)) async throws -> (channel: any Channel, recorder: NIOLoopBound<RecordingHandler>) {
    let recorders = Shared<[NIOLoopBound<RecordingHandler>]>([])
    let channel = try await ClientBootstrap(group: testGroup)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let recorder = RecordingHandler(eventLoop: channel.eventLoop)
                try channel.pipeline.syncOperations.addHandler(
                    OpenSSLHandler(context: context, serverName: serverName, handshakeTimeout: handshakeTimeout))
                try channel.pipeline.syncOperations.addHandler(recorder)
                recorders.update { $0.append(NIOLoopBound(recorder, eventLoop: channel.eventLoop)) }
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (channel, recorders.value[0])
}

extension NIOLoopBound where Value == RecordingHandler {
    /// Runs on the handler's loop and waits for the future it returns.
    func await<T: Sendable>(_ body: @escaping @Sendable (RecordingHandler) -> EventLoopFuture<T>) async throws -> T {
        try await eventLoop.flatSubmit { body(self.value) }.get()
    }

    func errors() async throws -> [String] {
        try await eventLoop.submit { self.value.errors.map { "\($0)" } }.get()
    }

    func firstErrorKind() async throws -> OpenSSLTLSError.Kind? {
        try await eventLoop.submit { (self.value.errors.first as? OpenSSLTLSError)?.kind }.get()
    }
}
