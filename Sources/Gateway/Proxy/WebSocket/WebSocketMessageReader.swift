import NIOCore
import NIOWebSocket
import Zlib

/// Whole messages out of one leg's bytes, as a pure state machine: frames from the parser,
/// fragments reassembled, compressed messages inflated, control frames passed on as they come.
/// The leg holds one and takes it into a local for the frames of each read (see
/// `WebSocketLegHandler.channelRead`).
struct WebSocketMessageReader {
    /// The frame parser's: one kind of violation for a leg's bytes, whichever layer finds it.
    typealias ProtocolViolation = WebSocketFrameParser.ProtocolViolation

    struct MessageTooLarge: Error, CustomStringConvertible {
        var limit: Int
        var description: String { "message larger than \(limit) bytes" }
    }

    /// A reassembled message larger than this ends the session (close code 1009).
    private let maxMessageSize: Int
    private var parser: WebSocketFrameParser
    private var fragments: (opcode: WebSocketOpcode, compressed: Bool, data: ByteBuffer)?

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
        parser = WebSocketFrameParser(maxFrameSize: maxMessageSize)
    }

    mutating func append(_ bytes: ByteBuffer) {
        parser.append(bytes)
    }

    /// The input as it is after the last `append`: messages' `plainFrameSpan`s index it.
    var bufferedInput: ByteBuffer { parser.bufferedInput }

    /// The next control frame or whole message, its payload unmasked (and decompressed with
    /// `deflate`, when agreed); nil when more bytes are needed.
    mutating func next(deflate: PerMessageDeflate?) throws -> WebSocketMessage? {
        while var frame = try parser.next() {
            if let key = frame.maskKey { frame.payload.applyWebSocketMask(key, at: 0, length: frame.payload.readableBytes) }
            if frame.opcode == .connectionClose || frame.opcode == .ping || frame.opcode == .pong {
                return WebSocketMessage(opcode: frame.opcode, payload: frame.payload)
            }
            if frame.fin, !frame.rsv1, frame.maskKey == nil, frame.opcode != .continuation, fragments == nil {
                return WebSocketMessage(opcode: frame.opcode, payload: frame.payload, plainFrameSpan: frame.span)
            }
            if let message = try assemble(frame, deflate: deflate) { return message }
        }
        return nil
    }

    /// A whole, decompressed message once its last fragment arrived; nil while fragments remain.
    private mutating func assemble(_ frame: WebSocketWireFrame, deflate: PerMessageDeflate?) throws -> WebSocketMessage? {
        var data = frame.payload
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
            (opcode, compressed) = (frame.opcode, frame.rsv1)
        }
        if compressed {
            guard let deflate else { throw ProtocolViolation(description: "compressed frame without permessage-deflate") }
            switch Result(catching: { () throws(ZlibInflater.Failure) in try deflate.decompress(data, limit: maxMessageSize) }) {
            case .success(let inflated): data = inflated
            case .failure(let failure) where failure.exceedsLimit: throw MessageTooLarge(limit: maxMessageSize)
            case .failure(let failure): throw failure
            }
        }
        return WebSocketMessage(opcode: opcode, payload: data)
    }
}
