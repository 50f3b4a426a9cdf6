import NIOCore
import NIOWebSocket
import Zlib

/// One end of a relayed WebSocket: reads frames off the connection's bytes, reassembles
/// fragmented messages, decompresses and compresses them when permessage-deflate was agreed,
/// passes whole messages and control frames to the relay, and writes the relay's frames.
/// It sits in front of the frame codec NIO's upgrader installs (which then sees nothing): a
/// relayed message costs one parse and one write here instead of a trip through both.
final class WebSocketLegHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side { case client, upstream }

    let side: Side
    /// A reassembled message larger than this ends the session (close code 1009).
    private let maxMessageSize: Int
    /// Set when permessage-deflate was agreed on this leg.
    var deflate: PerMessageDeflate?
    private var fragments: (opcode: WebSocketOpcode, compressed: Bool, data: ByteBuffer)?
    /// Strong: the legs keep the relay alive; `WebSocketRelay.close` breaks the cycle. Bound to
    /// the relay's loop, which is not this leg's when upstream is a tunnel stream.
    var relay: NIOLoopBound<WebSocketRelay>?
    var context: ChannelHandlerContext?
    /// Frames that arrived before the relay was attached.
    private var early: [WebSocketFrame] = []

    private var parser: WebSocketFrameParser

    init(side: Side, maxMessageSize: Int) {
        self.side = side
        self.maxMessageSize = maxMessageSize
        parser = WebSocketFrameParser(maxFrameSize: maxMessageSize)
    }

    /// Adds the leg in front of the frame codec NIO's upgrader just installed, so that the
    /// connection's bytes reach it and its writes leave as they are.
    func install(in channel: any Channel) throws {
        let sync = channel.pipeline.syncOperations
        let encoder = try sync.handler(type: WebSocketFrameEncoder.self)
        try sync.addHandler(self, position: .before(encoder))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func attach(_ relay: NIOLoopBound<WebSocketRelay>) {
        self.relay = relay
        let pending = early
        early = []
        for frame in pending { tellRelay { [side] in $0.received(frame, from: side) } }
    }

    /// Runs `call` on the relay's loop, which is not this leg's when upstream is a tunnel stream:
    /// the one place where the relay's two loops meet. Calls keep their order either way.
    private func tellRelay(_ call: @escaping @Sendable (WebSocketRelay) -> Void) {
        guard let relay else { return }
        if relay.eventLoop.inEventLoop { return call(relay.value) }
        relay.eventLoop.execute { call(relay.value) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        do {
            while let frame = try parser.next() {
                if frame.opcode == .connectionClose || frame.opcode == .ping || frame.opcode == .pong {
                    deliver(frame)
                } else if let message = try assemble(frame) {
                    deliver(message)
                }
            }
        } catch {
            tellRelay { [side] in $0.legFailed(side, error) }
            context.close(promise: nil)
        }
    }

    private func deliver(_ frame: WebSocketFrame) {
        guard let relay else { return early.append(frame) }
        // Every message passes here: on the relay's own loop it is a plain call, not a closure.
        if relay.eventLoop.inEventLoop { return relay.value.received(frame, from: side) }
        let side = side
        relay.eventLoop.execute { relay.value.received(frame, from: side) }
    }

    struct ProtocolViolation: Error, CustomStringConvertible {
        var description: String
    }

    struct MessageTooLarge: Error, CustomStringConvertible {
        var limit: Int
        var description: String { "message larger than \(limit) bytes" }
    }

    /// A whole, decompressed message once its last fragment arrived; nil while fragments remain.
    private func assemble(_ frame: WebSocketFrame) throws -> WebSocketFrame? {
        var data = frame.data
        if let key = frame.maskKey { data.applyWebSocketMask(key, at: 0, length: data.readableBytes) }
        let opcode: WebSocketOpcode
        let compressed: Bool
        if frame.opcode == .continuation {
            guard var pending = fragments else { throw ProtocolViolation(description: "continuation frame without a message") }
            guard pending.data.readableBytes + data.readableBytes <= maxMessageSize else { throw MessageTooLarge(limit: maxMessageSize) }
            pending.data.writeBuffer(&data)
            guard frame.fin else {
                fragments = pending
                return nil
            }
            fragments = nil
            (opcode, compressed, data) = pending
        } else {
            guard fragments == nil else { throw ProtocolViolation(description: "new message before the previous one ended") }
            guard frame.fin else {
                fragments = (frame.opcode, frame.rsv1, data)
                return nil
            }
            // A whole plain message (every answer event, usually) goes on as it came.
            if !frame.rsv1, frame.maskKey == nil { return frame }
            (opcode, compressed) = (frame.opcode, frame.rsv1)
        }
        if compressed {
            guard let deflate else { throw ProtocolViolation(description: "compressed frame without permessage-deflate") }
            data = try deflate.decompress(data)
            guard data.readableBytes <= maxMessageSize else { throw MessageTooLarge(limit: maxMessageSize) }
        }
        return WebSocketFrame(fin: true, opcode: opcode, data: data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        tellRelay { [side] in $0.legClosed(side) }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        tellRelay { [side] in $0.writabilityChanged(side, writable: writable) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        tellRelay { [side] in $0.legFailed(side, error) }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, side == .client {
            tellRelay { $0.close(code: .goingAway, reason: "server shutting down", unfinished: .interrupted) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func detach() {
        relay = nil
    }

    /// `frame.data` is the plain payload: `maskKey` is applied on the way out.
    func send(_ frame: WebSocketFrame) {
        guard let context else { return }
        var frame = frame
        if let deflate, frame.opcode == .text || frame.opcode == .binary {
            frame = WebSocketFrame(fin: true, rsv1: true, opcode: frame.opcode, maskKey: frame.maskKey, data: deflate.compress(frame.data))
        }
        if outgoing == nil { outgoing = context.channel.allocator.buffer(capacity: max(4096, 14 + frame.data.readableBytes)) }
        WebSocketFrameWriter.write(frame, into: &outgoing!)
        // A close frame goes out at once, with what is queued before it: the connection closes next.
        if frame.opcode == .connectionClose { return writeOutgoing(context) }
        flushSoon(context)
    }

    /// Frames relayed during this pass of the event loop, not written yet: the messages of one
    /// read (an answer's events often arrive dozens at a time) leave as one buffer and one write.
    private var outgoing: ByteBuffer?
    private var flushPending = false

    private func writeOutgoing(_ context: ChannelHandlerContext) {
        if let bytes = outgoing {
            outgoing = nil
            context.write(wrapOutboundOut(bytes), promise: nil)
        }
        context.flush()
    }

    /// One write and flush after everything this pass of the event loop relays.
    private func flushSoon(_ context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        context.eventLoop.assumeIsolated().execute {
            self.flushPending = false
            guard let context = self.context else { return }
            self.writeOutgoing(context)
        }
    }
}
