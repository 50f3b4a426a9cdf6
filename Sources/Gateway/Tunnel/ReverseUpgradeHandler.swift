import Configuration
import Foundation
import Logging
import NIOCore
import NIOPosix
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP
import Yamux

/// Sends the upgrade request, reads the answer up to its blank line, and on a 101 hands the
/// connection to a yamux server session — bytes that arrived with the 101 go to yamux first
/// (TCP may coalesce them, §6.2 step 5).
final class ReverseUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let ready: EventLoopPromise<Void>
    private let serveStream: @Sendable (any Channel) throws -> Void
    private let settings: YamuxConfiguration
    private let roundTrip: @Sendable (TimeAmount) -> Void
    private let wentAway: @Sendable (YamuxGoAwayCode) -> Void
    private let refusedStream: @Sendable () -> Void
    private var received = ByteBuffer()
    private var done = false
    /// An answer head larger than this is not a 101 from a receiver.
    static let headLimit = 16 * 1024

    init(request: String, ready: EventLoopPromise<Void>, settings: YamuxConfiguration, serveStream: @escaping @Sendable (any Channel) throws -> Void,
         roundTrip: @escaping @Sendable (TimeAmount) -> Void, wentAway: @escaping @Sendable (YamuxGoAwayCode) -> Void,
         refusedStream: @escaping @Sendable () -> Void) {
        self.request = request
        self.wentAway = wentAway
        self.refusedStream = refusedStream
        self.ready = ready
        self.settings = settings
        self.serveStream = serveStream
        self.roundTrip = roundTrip
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        let view = received.readableBytesView
        guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if received.readableBytes > Self.headLimit { fail(context: context, "the receiver's answer to the upgrade has no end") }
            return
        }
        let headLength = end.upperBound - view.startIndex
        let head = received.readString(length: headLength) ?? ""
        let statusLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        guard statusLine.hasPrefix("HTTP/1.1 101") else {
            return fail(context: context, "unexpected upgrade response: \(statusLine)")
        }
        done = true
        let serveStream = serveStream
        let session = YamuxSessionHandler(role: .server, configuration: settings, inboundStreamInitializer: { stream in
            stream.eventLoop.makeCompletedFuture { try serveStream(stream) }
        })
        do {
            try context.pipeline.syncOperations.addHandler(session, position: .after(self))
            try context.pipeline.syncOperations.addHandler(
                TunnelSessionObserver(roundTrip: roundTrip, wentAway: wentAway, refusedStream: refusedStream), position: .after(session))
        } catch {
            return fail(context: context, "cannot start the yamux session: \(error)")
        }
        let rest = received
        received = ByteBuffer()
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
        ready.succeed()
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        done = true
        ready.fail(ReverseConnectorError(message))
        context.close(promise: nil)
    }
}
