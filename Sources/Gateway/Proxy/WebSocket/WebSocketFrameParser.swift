import HTTPWire
import NIOCore
import NIOWebSocket

/// WebSocket frames (RFC 6455 §5.2) out of the bytes of one relay leg, as a pure state machine:
/// bytes in, one frame at a time out, the payload a slice of the bytes read (unmasked later,
/// where it is used). The relay's legs read bytes themselves instead of through NIO's frame
/// decoder: a decoder step and a boxed frame per message were most of a relayed message's cost.
struct WebSocketFrameParser {
    struct ProtocolViolation: Error, CustomStringConvertible {
        var description: String
    }

    /// Frames (and so messages) longer than this end the session: `MessageTooLarge`.
    private let maxFrameSize: Int
    private var input = ByteBuffer()
    private var failed = false

    init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    mutating func append(_ bytes: ByteBuffer) {
        input.appendParserInput(bytes)
    }

    /// The bytes not parsed yet, as they lie: a frame's `span` is an index range of this buffer
    /// as it was after the last `append`.
    var bufferedInput: ByteBuffer { input }

    /// The next whole frame, or nil when more bytes are needed.
    mutating func next() throws -> WebSocketWireFrame? {
        guard !failed else { throw ProtocolViolation(description: "the connection already failed") }
        guard let first = input.getInteger(at: input.readerIndex, as: UInt8.self),
              let second = input.getInteger(at: input.readerIndex + 1, as: UInt8.self) else { return nil }
        if first & 0x30 != 0 { return try fail(ProtocolViolation(description: "reserved bits 2 and 3 set")) }
        guard let opcode = WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F), Self.isKnown(opcode) else {
            return try fail(ProtocolViolation(description: "unknown opcode \(first & 0x0F)"))
        }
        let fin = first & 0x80 != 0
        let masked = second & 0x80 != 0
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = input.getInteger(at: input.readerIndex + offset, as: UInt16.self) else { return nil }
            length = Int(extended)
            offset += 2
        } else if length == 127 {
            guard let extended = input.getInteger(at: input.readerIndex + offset, as: UInt64.self) else { return nil }
            guard extended >> 63 == 0 else { return try fail(ProtocolViolation(description: "frame length with its top bit set")) }
            length = extended > UInt64(Int.max) ? Int.max : Int(extended)
            offset += 8
        }
        if opcode.isControlOpcode, !fin || length > 125 {
            return try fail(ProtocolViolation(description: "fragmented or long control frame"))
        }
        guard length <= maxFrameSize else { return try fail(WebSocketMessageReader.MessageTooLarge(limit: maxFrameSize)) }
        var maskKey: WebSocketMaskingKey?
        if masked {
            guard let keyBytes = input.getBytes(at: input.readerIndex + offset, length: 4) else { return nil }
            maskKey = WebSocketMaskingKey(keyBytes)
            offset += 4
        }
        guard input.readableBytes >= offset + length else { return nil }
        let start = input.readerIndex
        input.moveReaderIndex(forwardBy: offset)
        let payload = input.readSlice(length: length)!
        input.releaseIfConsumed()
        return WebSocketWireFrame(fin: fin, rsv1: first & 0x40 != 0, opcode: opcode, maskKey: maskKey, payload: payload,
                                  span: start..<(start + offset + length))
    }

    private static func isKnown(_ opcode: WebSocketOpcode) -> Bool {
        switch opcode {
        case .continuation, .text, .binary, .connectionClose, .ping, .pong: true
        default: false
        }
    }

    private mutating func fail(_ error: any Error) throws -> WebSocketWireFrame? {
        failed = true
        input = ByteBuffer()
        throw error
    }
}

/// A frame as the bytes that go on the wire: header, masking key and (masked) payload, appended
/// to a buffer that may hold the frames before it, so the messages of one read leave in one write.
enum WebSocketFrameWriter {
    static func write(_ frame: WebSocketWireFrame, into buffer: inout ByteBuffer) {
        var payload = frame.payload
        let length = payload.readableBytes
        buffer.reserveCapacity(minimumWritableBytes: 14 + length)
        // The header in one write: byte by byte through ByteBuffer cost more than copying the payload.
        var first = UInt8(webSocketOpcode: frame.opcode)
        if frame.fin { first |= 0x80 }
        if frame.rsv1 { first |= 0x40 }
        let maskBit: UInt8 = frame.maskKey == nil ? 0 : 0x80
        let key = frame.maskKey
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 14) { header in
            header[0] = first
            var count = 2
            if length < 126 {
                header[1] = maskBit | UInt8(length)
            } else if length <= Int(UInt16.max) {
                header[1] = maskBit | 126
                header.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
                count = 4
            } else {
                header[1] = maskBit | 127
                header.storeBytes(of: UInt64(length).bigEndian, toByteOffset: 2, as: UInt64.self)
                count = 10
            }
            if let key {
                for index in 0..<4 { header[count + index] = key[index] }
                count += 4
            }
            return count
        }
        let start = buffer.writerIndex
        buffer.writeBuffer(&payload)
        // Masked where it was written: no second copy of the payload.
        if let key { buffer.applyWebSocketMask(key, at: start - buffer.readerIndex, length: length) }
    }
}

extension ByteBuffer {
    /// XORs `length` readable bytes from `offset` with the masking key (RFC 6455 §5.3), eight
    /// bytes at a time: a client's request can be megabytes, and NIO's unmasking goes byte by
    /// byte with a division for each.
    mutating func applyWebSocketMask(_ key: WebSocketMaskingKey, at offset: Int, length: Int) {
        withUnsafeMutableReadableBytes { bytes in
            var word: UInt64 = 0
            for index in 0..<8 { word |= UInt64(key[index & 3]) << (8 * UInt64(index)) }
            let wordMask = UInt64(littleEndian: word)
            var index = 0
            while index + 8 <= length {
                let value = bytes.loadUnaligned(fromByteOffset: offset + index, as: UInt64.self)
                bytes.storeBytes(of: value ^ wordMask, toByteOffset: offset + index, as: UInt64.self)
                index += 8
            }
            while index < length {
                bytes[offset + index] ^= key[index & 3]
                index += 1
            }
        }
    }
}
