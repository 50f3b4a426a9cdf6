@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// The relay legs' own frame parser and writer: every length encoding, masking, frames split
/// across reads, and the frames a leg must refuse.
@Suite(.timeLimit(.minutes(1))) struct WebSocketFrameParserTests {
    /// Parses `bytes` fed in pieces of `piece` bytes (0: at once).
    static func frames(_ bytes: [UInt8], piece: Int = 0, maxFrameSize: Int = 1 << 20) throws -> [WebSocketWireFrame] {
        var parser = WebSocketFrameParser(maxFrameSize: maxFrameSize)
        var frames: [WebSocketWireFrame] = []
        let step = piece == 0 ? max(bytes.count, 1) : piece
        var offset = 0
        while offset < bytes.count {
            parser.append(ByteBuffer(bytes: bytes[offset..<min(offset + step, bytes.count)]))
            offset += step
            while let frame = try parser.next() { frames.append(frame) }
        }
        return frames
    }

    static func written(_ frame: WebSocketWireFrame) -> [UInt8] {
        var buffer = ByteBuffer()
        WebSocketFrameWriter.write(frame, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// What NIO's own encoder makes of a frame: the writer must agree byte for byte.
    static func encodedByNIO(_ frame: WebSocketWireFrame) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: WebSocketFrameEncoder())
        try channel.writeOutbound(WebSocketFrame(fin: frame.fin, rsv1: frame.rsv1, opcode: frame.opcode, maskKey: frame.maskKey, data: frame.payload))
        var bytes: [UInt8] = []
        while let part = try channel.readOutbound(as: ByteBuffer.self) { bytes += part.readableBytesView }
        _ = try channel.finish()
        return bytes
    }

    /// The payload as sent: a parsed frame keeps its mask, which the message reader takes off.
    static func unmasked(_ frame: WebSocketWireFrame) -> ByteBuffer {
        var payload = frame.payload
        if let key = frame.maskKey { payload.applyWebSocketMask(key, at: 0, length: payload.readableBytes) }
        return payload
    }

    @Test(arguments: [0, 1, 125, 126, 127, 65535, 65536, 70000])
    func everyLengthEncodingRoundTripsAndMatchesNIO(_ length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for maskKey in [nil, WebSocketMaskingKey([1, 2, 3, 4])] as [WebSocketMaskingKey?] {
            let frame = WebSocketWireFrame(opcode: .binary, maskKey: maskKey, payload: ByteBuffer(bytes: payload))
            let bytes = Self.written(frame)
            #expect(bytes == (try Self.encodedByNIO(frame)), "length \(length), masked \(maskKey != nil)")
            for piece in [0, 1, 7] where length < 2000 || piece == 0 {
                let parsed = try Self.frames(bytes, piece: piece)
                #expect(parsed.count == 1)
                #expect(parsed.first.map { Array(Self.unmasked($0).readableBytesView) } == payload)
                #expect(parsed.first?.maskKey == maskKey)
                #expect(parsed.first?.fin == true && parsed.first?.opcode == .binary)
            }
        }
    }

    /// Frames gathered into one buffer: each masked where it lies, whatever the offset.
    @Test func maskedFramesWrittenAfterOthersMatchNIO() throws {
        let frames = [1, 9, 200, 3, 64].enumerated().map { number, length in
            WebSocketWireFrame(opcode: .text, maskKey: WebSocketMaskingKey([UInt8(number), 0xA5, 0x3C, 0xFF]),
                               payload: ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ number) }))
        }
        var buffer = ByteBuffer()
        buffer.writeString("xyz")
        buffer.moveReaderIndex(forwardBy: 1)
        for frame in frames { WebSocketFrameWriter.write(frame, into: &buffer) }
        #expect(Array(buffer.readableBytesView) == Array("yz".utf8) + (try frames.flatMap(Self.encodedByNIO)))
    }

    @Test func severalFramesInOneReadKeepTheirBitsAndOrder() throws {
        let frames = [
            WebSocketWireFrame(fin: false, opcode: .text, payload: ByteBuffer(string: "hel")),
            WebSocketWireFrame(opcode: .continuation, payload: ByteBuffer(string: "lo")),
            WebSocketWireFrame(rsv1: true, opcode: .text, payload: ByteBuffer(string: "z")),
            WebSocketWireFrame(opcode: .ping, payload: ByteBuffer(string: "p")),
            WebSocketWireFrame(opcode: .connectionClose, payload: ByteBuffer(bytes: [0x03, 0xE8])),
        ]
        let bytes = frames.flatMap(Self.written)
        for piece in [0, 1, 3] {
            let parsed = try Self.frames(bytes, piece: piece)
            #expect(parsed.map(\.opcode) == [.text, .continuation, .text, .ping, .connectionClose])
            #expect(parsed.map(\.fin) == [false, true, true, true, true])
            #expect(parsed.map(\.rsv1) == [false, false, true, false, false])
            #expect(parsed.map { String(buffer: $0.payload) }.prefix(4) == ["hel", "lo", "z", "p"])
        }
    }

    @Test(arguments: [
        ("reserved bit 2", [0xA1, 0x00] as [UInt8]),
        ("reserved bit 3", [0x91, 0x00]),
        ("unknown opcode", [0x83, 0x00]),
        ("fragmented ping", [0x09, 0x00]),
        ("long close", [0x88, 0x7E, 0x00, 0x7E] + [UInt8](repeating: 0, count: 126)),
        ("length with its top bit set", [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1]),
    ])
    func malformedFramesAreRefused(_ name: String, _ bytes: [UInt8]) {
        #expect(throws: WebSocketFrameParser.ProtocolViolation.self, "\(name)") { try Self.frames(bytes) }
    }

    @Test func aFrameOverTheLimitIsRefusedFromItsHeaderAlone() {
        // Only the header arrives: the size is known, and the payload is never waited for.
        let header: [UInt8] = [0x81, 0x7E, 0x10, 0x00]  // 4096 bytes announced
        #expect(throws: WebSocketMessageReader.MessageTooLarge.self) { try Self.frames(header, maxFrameSize: 4095) }
        #expect((try? Self.frames(header, maxFrameSize: 4096))?.isEmpty == true)
    }

    @Test func randomBytesNeverCrashOrHang() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? Self.frames(bytes, piece: Int.random(in: 0..<5, using: &random), maxFrameSize: 1024)
        }
    }
}
