import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A one-shot HTTP listener for the browser's redirect (`GET /auth/callback?…`): it answers the
/// browser, hands the full URL over and stops.
final class CallbackListener: Sendable {
    private let channel: any Channel
    private let received: EventLoopPromise<String>
    let port: Int

    static func start(host: String = "127.0.0.1", port: Int) async throws -> CallbackListener {
        let group = MultiThreadedEventLoopGroup.singleton
        let received = group.next().makePromise(of: String.self)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(CallbackHandler(host: host, port: port, received: received))
                }
            }
            .bind(host: host, port: port).get()
        return CallbackListener(channel: channel, received: received, port: channel.localAddress?.port ?? port)
    }

    private init(channel: any Channel, received: EventLoopPromise<String>, port: Int) {
        self.channel = channel
        self.received = received
        self.port = port
    }

    /// The address the browser was sent to, once it arrives.
    func redirect() async throws -> String {
        try await received.futureResult.get()
    }

    func stop() async {
        received.fail(ChannelError.ioOnClosedChannel)
        try? await channel.close()
    }
}

private final class CallbackHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let host: String
    let port: Int
    let received: EventLoopPromise<String>

    init(host: String, port: Int, received: EventLoopPromise<String>) {
        self.host = host
        self.port = port
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let isCallback = head.uri.hasPrefix("/auth/callback")
        let text = isCallback ? "Signed in. You can close this tab and go back to the terminal.\n" : "Not found.\n"
        var headers = HTTPHeaders([("content-type", "text/plain; charset=utf-8"), ("content-length", String(text.utf8.count)), ("connection", "close")])
        headers.add(name: "cache-control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: isCallback ? .ok : .notFound, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        if isCallback { received.succeed("http://\(host):\(port)\(head.uri)") }
    }
}
