#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// The least a relay on NIO can do, as a yardstick for codexpool's own work: every client
/// connection gets its own upstream connection on the same event loop, and bytes go through both
/// ways as they are read — no HTTP, no pooling, no accounting, no rewriting. It runs as a process
/// of its own (`ProxyBenchmark byte-pipe <port> <upstream port>`) so that its CPU is measured
/// like the proxies'.
enum BytePipe {
    static func run(port: Int, upstreamPort: Int) throws -> Never {
        // The benchmark's threads block SIGTERM, and a spawned child inherits the mask: unblocked
        // here (before the event loops' threads start), the benchmark's terminate ends this process.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { client in
                let fromClient = PipeEnd()
                do {
                    try client.pipeline.syncOperations.addHandler(fromClient)
                } catch {
                    return client.eventLoop.makeFailedFuture(error)
                }
                return ClientBootstrap(group: client.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { upstream in
                        upstream.eventLoop.makeCompletedFuture {
                            try upstream.pipeline.syncOperations.addHandler(PipeEnd(peer: client))
                        }
                    }
                    .connect(host: "127.0.0.1", port: upstreamPort)
                    .map { upstream in fromClient.attach(upstream) }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        try server.closeFuture.wait()
        fatalError("the byte pipe's listener closed")
    }
}

/// One side of a pipe: what it reads goes to its peer, written and flushed at once; what arrives
/// before the peer is connected waits for it.
private final class PipeEnd: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var peer: (any Channel)?
    private var early: [ByteBuffer] = []
    private var closed = false

    init(peer: (any Channel)? = nil) {
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let peer { peer.writeAndFlush(bytes, promise: nil) } else { early.append(bytes) }
    }

    func attach(_ channel: any Channel) {
        guard !closed else { return channel.close(promise: nil) }
        peer = channel
        for bytes in early { channel.write(bytes, promise: nil) }
        early = []
        channel.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        peer?.close(promise: nil)
        peer = nil
    }
}
