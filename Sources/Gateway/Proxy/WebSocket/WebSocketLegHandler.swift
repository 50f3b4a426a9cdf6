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
    /// Set when permessage-deflate was agreed on this leg.
    var deflate: PerMessageDeflate?
    /// Strong: the legs keep the relay alive; `WebSocketRelay.close` breaks the cycle. Bound to
    /// the relay's loop, which is not this leg's when upstream is a tunnel stream.
    var relay: NIOLoopBound<WebSocketRelay>?
    /// The relay itself when it runs on this leg's loop (always for the client leg), decided once
    /// at `attach`: messages and events then reach it without the loop check that every use of
    /// `relay.value` makes.
    private var localRelay: WebSocketRelay?
    var context: ChannelHandlerContext?
    /// Messages that arrived before the relay was attached.
    private var early: [WebSocketMessage] = []

    private var reader: WebSocketMessageReader

    init(side: Side, maxMessageSize: Int) {
        self.side = side
        reader = WebSocketMessageReader(maxMessageSize: maxMessageSize)
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

    /// Called on this leg's loop.
    func attach(_ relay: NIOLoopBound<WebSocketRelay>) {
        self.relay = relay
        localRelay = relay.eventLoop.inEventLoop ? relay.value : nil
        let pending = early
        early = []
        if let localRelay {
            for message in pending { localRelay.received(message, from: side) }
        } else {
            handOver(pending)
        }
    }

    /// Runs `call` on the relay's loop, which is not this leg's when upstream is a tunnel stream:
    /// the one place where the relay's two loops meet. Calls keep their order either way.
    private func tellRelay(_ call: @escaping @Sendable (WebSocketRelay) -> Void) {
        if let localRelay { return call(localRelay) }
        guard let relay else { return }
        relay.eventLoop.execute { call(relay.value) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The reader is taken into a local for the messages of one read and put back once:
        // reached through the handler's properties, every relayed message paid for several of
        // the runtime's exclusivity checks. Nothing a message leads to reads from this leg.
        var reader = WebSocketMessageReader(maxMessageSize: 0)
        swap(&reader, &self.reader)
        defer { swap(&reader, &self.reader) }
        reader.append(unwrapInboundIn(data))
        let deflate = self.deflate
        // For a relay on another loop (upstream is a tunnel stream), the read's messages go over
        // in one task: a task each cost a lock and often a wake-up of that loop per message.
        var crossing: [WebSocketMessage] = []
        // Upstream's messages that the relay has nothing to do with — most of a turn's, its
        // output deltas — go to the client as the frames they came in, a run of them at a time,
        // when the client's leg would write them as they are (uncompressed): a message each
        // through the relay and the frame writer was most of a relayed turn's cost.
        let passingBelow = localRelay?.unchangedFrameSizeLimit(from: side) ?? 0
        let source = passingBelow > 0 ? reader.bufferedInput : ByteBuffer()
        var run: Range<Int>?
        do {
            while let message = try reader.next(deflate: deflate) {
                if let span = message.plainFrameSpan, message.payload.readableBytes < passingBelow,
                   message.opcode == .binary || !Self.isActedOn(message.payload) {
                    if let current = run, current.upperBound == span.lowerBound {
                        run = current.lowerBound..<span.upperBound
                    } else {
                        passOn(run, of: source)
                        run = span
                    }
                    continue
                }
                passOn(run, of: source)
                run = nil
                if let localRelay {
                    // On the relay's own loop it is a plain call.
                    localRelay.received(message, from: side)
                } else if relay != nil {
                    crossing.append(message)
                } else {
                    early.append(message)
                }
            }
        } catch {
            passOn(run, of: source)
            handOver(crossing)
            tellRelay { [side] in $0.legFailed(side, error) }
            context.close(promise: nil)
            return
        }
        passOn(run, of: source)
        handOver(crossing)
    }

    private static func isActedOn(_ payload: ByteBuffer) -> Bool {
        payload.withUnsafeReadableBytes { WebSocketEventRewriter.isActedOn($0) }
    }

    /// A run of frames read from this leg, passed on to the other as they came. The other leg may
    /// write the slice itself, which keeps the whole read buffer until it is written, only when
    /// the run is a good part of that buffer: a slow client then holds at most a few times the
    /// bytes it is owed, never a buffer for every few hundred bytes.
    private func passOn(_ run: Range<Int>?, of source: ByteBuffer) {
        guard let run, let localRelay else { return }
        let frames = source.getSlice(at: run.lowerBound, length: run.count)!
        localRelay.relayUnchangedFrames(frames, sharingItsBuffer: run.count * 4 >= source.capacity, from: side)
    }

    /// Messages for a relay on another loop, in one task, in order.
    private func handOver(_ messages: [WebSocketMessage]) {
        guard !messages.isEmpty, let relay else { return }
        let side = side
        relay.eventLoop.execute {
            let relay = relay.value
            for message in messages { relay.received(message, from: side) }
        }
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
        localRelay = nil
    }

    /// Keys for the upstream leg's frames need not come from the kernel: masking only keeps
    /// intermediaries from reading a client's bytes as something else (RFC 6455 §10.3).
    private static func maskingKey() -> WebSocketMaskingKey {
        var random = CheapRandom()
        return .random(using: &random)
    }

    /// Writes `message` as one frame: compressed when permessage-deflate was agreed and it is
    /// text or binary and not short, masked on the upstream leg (a client's frames are, RFC 6455 §5.3).
    func send(_ message: WebSocketMessage) {
        guard let context else { return }
        var frame = WebSocketWireFrame(opcode: message.opcode, maskKey: side == .upstream ? Self.maskingKey() : nil, payload: message.payload)
        if let deflate, message.opcode == .text || message.opcode == .binary, deflate.compresses(message.payload) {
            frame.rsv1 = true
            frame.payload = deflate.compress(message.payload)
        }
        // A close frame goes out at once, with what is queued before it: the connection closes next.
        let closing = message.opcode == .connectionClose
        let needsFlush = outgoing.add(frame, context: context, flushingSoon: !closing)
        if closing { return writeOutgoing(context) }
        if needsFlush { flushSoon(context) }
    }

    /// Frames read from the other leg, written as they came (see `channelRead`); `sharing`: the
    /// slice may be written itself rather than copied.
    func sendUnchanged(_ frames: ByteBuffer, sharing: Bool) {
        guard let context else { return }
        if outgoing.add(frames, sharing: sharing, context: context) { flushSoon(context) }
    }

    /// Frames relayed during this pass of the event loop, not written yet: the messages of one
    /// read (an answer's events often arrive dozens at a time) leave as one buffer and one write.
    /// One value, so that a relayed message reaches it with one access.
    private struct Outgoing {
        var bytes: ByteBuffer?
        var flushScheduled = false

        /// Adds `frame`; true when it is the first since the last flush that is to go soon.
        mutating func add(_ frame: WebSocketWireFrame, context: ChannelHandlerContext, flushingSoon: Bool) -> Bool {
            startBuffer(holding: 14 + frame.payload.readableBytes, context: context)
            WebSocketFrameWriter.write(frame, into: &bytes!)
            return flushingSoon && claimFlush()
        }

        /// Adds frames as they are; true as `add(_:context:flushingSoon:)`. Frames that may be
        /// shared and come first are taken as the buffer itself: no copy when nothing else is
        /// written in this pass.
        mutating func add(_ frames: ByteBuffer, sharing: Bool, context: ChannelHandlerContext) -> Bool {
            if bytes == nil, sharing {
                bytes = frames
            } else {
                var frames = frames
                startBuffer(holding: frames.readableBytes, context: context)
                bytes!.writeBuffer(&frames)
            }
            return claimFlush()
        }

        /// The allocator only for a new buffer: reaching it through the channel, per message, was
        /// a tenth of the cost of sending one.
        private mutating func startBuffer(holding count: Int, context: ChannelHandlerContext) {
            if bytes == nil { bytes = context.channel.allocator.buffer(capacity: max(4096, count)) }
        }

        /// True when no flush is scheduled yet; one is from now on.
        private mutating func claimFlush() -> Bool {
            guard !flushScheduled else { return false }
            flushScheduled = true
            return true
        }

        mutating func take() -> ByteBuffer? {
            defer { bytes = nil }
            return bytes
        }
    }

    private var outgoing = Outgoing()

    private func writeOutgoing(_ context: ChannelHandlerContext) {
        if let bytes = outgoing.take() { context.write(wrapOutboundOut(bytes), promise: nil) }
        context.flush()
    }

    /// One write and flush after everything this pass of the event loop relays.
    private func flushSoon(_ context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().execute {
            self.outgoing.flushScheduled = false
            guard let context = self.context else { return }
            self.writeOutgoing(context)
        }
    }
}
