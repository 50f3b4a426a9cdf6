@testable import Gateway
import HTTPWire
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import UpstreamHTTP

/// A connection on another event loop than its exchange (a tunnel stream's): the answer's
/// callbacks come back on the exchange's loop, in the order the answer was read, whether they
/// come one read at a time or several together.
@Suite(.timeLimit(.minutes(1))) struct CrossLoopUpstreamConnectionTests {
    /// Answers any request with a head and `pieces` chunks, each written and flushed on its own.
    final class ChunkedAnswerer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let pieces: Int

        init(pieces: Int) {
            self.pieces = pieces
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")),
                                  promise: nil)
            for piece in 0..<pieces {
                let text = "piece \(piece);"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "\(String(text.utf8.count, radix: 16))\r\n\(text)\r\n")), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "0\r\n\r\n")), promise: nil)
        }
    }

    /// What the exchange hears, checked to be on its own loop.
    final class Recorder: UpstreamResponseDelegate {
        let loop: any EventLoop
        let done: EventLoopPromise<[String]>
        var events: [String] = []

        init(loop: any EventLoop, done: EventLoopPromise<[String]>) {
            self.loop = loop
            self.done = done
        }

        private func note(_ event: String) {
            events.append(loop.inEventLoop ? event : "off its loop: \(event)")
        }

        func upstreamReceivedHead(_ head: ReceivedResponseHead) { note("head \(head.status.code)") }
        func upstreamReceivedBody(_ buffer: ByteBuffer) { note("body \(String(buffer: buffer))") }
        func upstreamReadComplete() { note("read") }
        func upstreamFailed(_ error: UpstreamError) {
            note("failed")
            done.succeed(events)
        }
        func upstreamFinished() {
            note("finished")
            done.succeed(events)
        }
    }

    @Test func callbacksComeBackInOrderOnTheCallersLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let (connectionLoop, callerLoop) = (loops[0], loops[1])
        let pieces = 200
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ChunkedAnswerer(pieces: pieces)) } }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = UpstreamClient()
        let connection = try await client.connect(UpstreamTarget(host: "127.0.0.1", port: server.localAddress?.port ?? 0, tls: nil), on: connectionLoop).get()
        let done = callerLoop.makePromise(of: [String].self)
        callerLoop.execute {
            let recorder = Recorder(loop: callerLoop, done: done)
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            CrossLoopUpstreamConnection(connection, callerLoop: callerLoop).execute(head, body: nil, delegate: recorder)
        }
        let events = try await done.futureResult.get()
        try await server.close()
        try await group.shutdownGracefully()

        #expect(!events.contains { $0.hasPrefix("off its loop") })
        #expect(events.first == "head 200")
        #expect(events.last == "finished")
        let body = events.filter { $0.hasPrefix("body ") }.map { $0.dropFirst(5) }.joined()
        #expect(body == (0..<pieces).map { "piece \($0);" }.joined())
    }
}
