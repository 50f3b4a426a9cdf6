import HTTPWire
import NIOCore
import NIOHTTP1

/// HTTP/1.1 on a client connection: reads requests with `HTTPRequestParser` and hands their parts
/// on; the gateway's HTTP handler writes its answers through it by direct calls, not down the
/// pipeline (one handler and one buffer per head, as on the upstream and WebSocket legs).
/// After a request that asks to upgrade it reads nothing more until that request is answered
/// over HTTP; when the upgrade happens instead, it is removed and hands what it had not parsed
/// to the next protocol.
final class ClientHTTPCodec: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private var parser: HTTPRequestParser
    private var context: ChannelHandlerContext?
    /// How the body of the answer being written is framed.
    private var bodyFraming = HTTPResponseHeadWriter.BodyFraming.asIs
    /// A chunk was written whose closing line end is still owed: it goes out in front of the
    /// next chunk's size, or of the last chunk, so a chunk costs two buffers, not three.
    private var owesChunkEnd = false
    private var delivering = false
    private var failed = false

    init(maxHeadBytes: Int) {
        parser = HTTPRequestParser(maxHeadBytes: maxHeadBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Removed for an upgrade: the bytes after the upgrade request go on to the next protocol.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let unparsed = parser.takeUnparsed()
        if unparsed.readableBytes > 0 {
            context.fireChannelRead(NIOAny(unparsed))
            context.fireChannelReadComplete()
        }
        context.leavePipeline(removalToken: removalToken)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        deliver(context)
    }

    private func deliver(_ context: ChannelHandlerContext) {
        // Bytes fed back into the pipeline while a part is being handled would be delivered by a
        // nested loop, out of order; the loop under way picks them up instead. (Resuming after an
        // upgrade request answered over HTTP is scheduled on the loop for the same reason.)
        guard !delivering else { return }
        delivering = true
        defer { delivering = false }
        do {
            while self.context != nil, let event = try parser.next() {
                switch event {
                case .head(let head): context.fireChannelRead(wrapInboundOut(.head(head)))
                case .body(let bytes): context.fireChannelRead(wrapInboundOut(.body(bytes)))
                case .end: context.fireChannelRead(wrapInboundOut(.end(nil)))
                }
            }
        } catch {
            // Reported once; the parser takes nothing more after a failure.
            guard !failed else { return }
            failed = true
            context.fireErrorCaught(error)
        }
    }

    // MARK: Writing answers

    /// An interim answer (`100 Continue`), sent at once; the answer proper follows.
    func sendInterim(_ head: HTTPResponseHead) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        _ = HTTPResponseHeadWriter.write(head, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func writeHead(_ head: HTTPResponseHead) {
        writeHead(capacity: 128 + 64 * head.headers.count) { HTTPResponseHeadWriter.write(head, into: &$0) }
    }

    /// A head whose header lines `writeLines` writes, straight from the bytes of an upstream head.
    func writeHead(version: HTTPVersion, status: HTTPResponseStatus, lines writeLines: (inout ByteBuffer) -> HTTPResponseHeadWriter.HeaderFraming) {
        writeHead(capacity: 1024) { HTTPResponseHeadWriter.write(version: version, status: status, into: &$0, lines: writeLines) }
    }

    /// Writes the head `write` serialises, and starts the body framing it chose.
    private func writeHead(capacity: Int, _ write: (inout ByteBuffer) -> HTTPResponseHeadWriter.BodyFraming) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: capacity)
        bodyFraming = write(&buffer)
        owesChunkEnd = false
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    func writeBody(_ bytes: ByteBuffer) {
        guard let context, bytes.readableBytes > 0 else { return }
        if bodyFraming == .chunked {
            var size = context.channel.allocator.buffer(capacity: 24)
            if owesChunkEnd { size.writeStaticString("\r\n") }
            size.writeString(String(bytes.readableBytes, radix: 16))
            size.writeStaticString("\r\n")
            owesChunkEnd = true
            context.write(wrapOutboundOut(size), promise: nil)
        }
        context.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// The answer is complete; an answer framed by the connection's end closes it.
    func writeEnd(promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let framing = bodyFraming
        bodyFraming = .asIs
        let lastChunk: ByteBuffer? = framing == .chunked ? ByteBuffer(staticString: owesChunkEnd ? "\r\n0\r\n\r\n" : "0\r\n\r\n") : nil
        owesChunkEnd = false
        if framing == .untilClose {
            // Written out first, then closed: the close is the body's end.
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else if lastChunk != nil || promise != nil {
            // An empty write still completes only once everything before it is written.
            context.writeAndFlush(wrapOutboundOut(lastChunk ?? context.channel.allocator.buffer(capacity: 0)), promise: promise)
        } else {
            context.flush()
        }
        // An upgrade request answered over HTTP: the connection goes on as HTTP.
        if parser.isWaitingAfterUpgradeRequest {
            parser.resume()
            let codec = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let codec = codec.value
                if let context = codec.context { codec.deliver(context) }
            }
        }
    }
}
