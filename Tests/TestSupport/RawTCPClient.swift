public import NIOCore
import NIOPosix

/// A plain TCP connection for tests that speak to a server process byte for byte: what arrives
/// is delivered as a stream that ends when the server closes.
public enum RawTCPClient {
    /// - Parameter prepare: adds handlers in front of the collector (a TLS client, say).
    public static func connect(port: Int, prepare: (@Sendable (any Channel) throws -> Void)? = nil) async throws
        -> (channel: any Channel, received: AsyncStream<ByteBuffer>) {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try prepare?(channel)
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (channel, stream)
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let continuation: AsyncStream<ByteBuffer>.Continuation

        init(continuation: AsyncStream<ByteBuffer>.Continuation) {
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            continuation.yield(unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            continuation.finish()
        }
    }
}
