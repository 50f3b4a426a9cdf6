@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
import Zlib

/// What a relay leg puts on its connection: the upstream leg masks every frame (it is the
/// backend's client, RFC 6455 §5.3), the client leg masks none, and a leg that agreed
/// permessage-deflate compresses text and binary messages but never control frames.
@Suite(.timeLimit(.minutes(1))) struct WebSocketLegHandlerTests {
    /// The frames `messages` leave as, sent through a leg of `side` on an embedded channel.
    static func written(_ messages: [WebSocketMessage], side: WebSocketLegHandler.Side, deflate: PerMessageDeflate? = nil) throws -> [WebSocketWireFrame] {
        let leg = WebSocketLegHandler(side: side, maxMessageSize: 1 << 20)
        leg.deflate = deflate
        let channel = EmbeddedChannel(handler: leg)
        for message in messages { leg.send(message) }
        channel.embeddedEventLoop.run()
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20)
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { parser.append(bytes) }
        var frames: [WebSocketWireFrame] = []
        while let frame = try parser.next() { frames.append(frame) }
        _ = try channel.finish()
        return frames
    }

    static let messages = [
        WebSocketMessage.text(ByteBuffer(string: #"{"type":"response.create"}"#)),
        WebSocketMessage(opcode: .binary, payload: ByteBuffer(bytes: [0, 1, 2, 250])),
        WebSocketMessage(opcode: .pong, payload: ByteBuffer(string: "p")),
        WebSocketMessage(opcode: .connectionClose, payload: ByteBuffer(bytes: [0x03, 0xE8])),
    ]

    @Test(arguments: [WebSocketLegHandler.Side.upstream, .client]) func upstreamFramesAreMaskedAndClientFramesAreNot(side: WebSocketLegHandler.Side) throws {
        let frames = try Self.written(Self.messages, side: side)
        #expect(frames.map(\.opcode) == [.text, .binary, .pong, .connectionClose])
        #expect(frames.allSatisfy { ($0.maskKey != nil) == (side == .upstream) && $0.fin && !$0.rsv1 })
        let payloads = frames.map { Array(WebSocketFrameParserTests.unmasked($0).readableBytesView) }
        #expect(payloads == Self.messages.map { Array($0.payload.readableBytesView) })
        if side == .upstream {
            // Not one key for the whole connection.
            #expect(Set(frames.compactMap { $0.maskKey.map { Array($0) } }).count > 1)
        }
    }

    /// Long messages are compressed; short ones (below `minimumCompressedSize`) and control
    /// frames go as they are, and the peer's inflater reads the mix.
    @Test func withDeflateAgreedLongMessagesAreCompressedAndShortOnesAndControlFramesAreNot() throws {
        let long = #"{"type":"response.completed","text":""# + String(repeating: "all work and no play ", count: 60) + #""}"#
        let binary = (0..<PerMessageDeflate.minimumCompressedSize).map { UInt8($0 % 7) }
        let short = String(repeating: "s", count: PerMessageDeflate.minimumCompressedSize - 1)
        let messages = [WebSocketMessage.text(ByteBuffer(string: long)), WebSocketMessage(opcode: .binary, payload: ByteBuffer(bytes: binary)),
                        WebSocketMessage.text(ByteBuffer(string: short)), WebSocketMessage.text(ByteBuffer(string: long))] + Self.messages
        let frames = try Self.written(messages, side: .client, deflate: PerMessageDeflate(.init()))
        #expect(frames.map(\.rsv1) == [true, true, false, true, false, false, false, false])
        let inflater = PerMessageDeflate(.init())
        #expect(String(buffer: try inflater.decompress(frames[0].payload)) == long)
        #expect(frames[0].payload.readableBytes < long.utf8.count / 4)
        #expect(Array(try inflater.decompress(frames[1].payload).readableBytesView) == binary)
        #expect(String(buffer: frames[2].payload) == short)
        // The context carries on past the message that went uncompressed.
        #expect(String(buffer: try inflater.decompress(frames[3].payload)) == long)
        #expect(String(buffer: frames[4].payload) == #"{"type":"response.create"}"#)
        #expect(String(buffer: frames[6].payload) == "p")
    }
}
