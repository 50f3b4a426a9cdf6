@testable import Gateway
import NIOCore
import NIOWebSocket
import Testing
import Zlib

/// A relay leg's messages out of its bytes: fragments joined across reads, control frames
/// between fragments passed on at once, masks taken off, compressed messages inflated, and the
/// sequences a leg must refuse.
@Suite(.timeLimit(.minutes(1))) struct WebSocketMessageReaderTests {
    static let mask = WebSocketMaskingKey([0x11, 0x22, 0x33, 0x44])

    static func bytes(_ frames: [WebSocketWireFrame]) -> [UInt8] {
        var buffer = ByteBuffer()
        for frame in frames { WebSocketFrameWriter.write(frame, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    /// The messages `bytes` hold, fed to one reader in pieces of `piece` bytes (0: at once).
    static func messages(_ bytes: [UInt8], piece: Int = 0, maxMessageSize: Int = 1 << 20, deflate: PerMessageDeflate? = nil) throws
        -> [(opcode: WebSocketOpcode, text: String)] {
        var reader = WebSocketMessageReader(maxMessageSize: maxMessageSize)
        var messages: [(opcode: WebSocketOpcode, text: String)] = []
        let step = piece == 0 ? max(bytes.count, 1) : piece
        for start in stride(from: 0, to: bytes.count, by: step) {
            reader.append(ByteBuffer(bytes: bytes[start..<min(start + step, bytes.count)]))
            while let message = try reader.next(deflate: deflate) {
                messages.append((message.opcode, String(buffer: message.payload)))
            }
        }
        return messages
    }

    static func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true, masked: Bool = false, compressed: Bool = false) -> WebSocketWireFrame {
        WebSocketWireFrame(fin: fin, rsv1: compressed, opcode: opcode, maskKey: masked ? mask : nil, payload: ByteBuffer(string: text))
    }

    /// A message in three fragments with a ping between them, then a whole one: the ping comes
    /// out first, the message joined, whether the frames are masked or not and however the bytes
    /// are cut.
    @Test(arguments: [false, true]) func fragmentsAreJoinedAndControlFramesPassAtOnce(masked: Bool) throws {
        let bytes = Self.bytes([
            Self.frame(.text, "hel", fin: false, masked: masked), Self.frame(.continuation, "lo ", fin: false, masked: masked),
            Self.frame(.ping, "p", masked: masked), Self.frame(.continuation, "world", masked: masked), Self.frame(.binary, "next", masked: masked),
        ])
        for piece in [0, 1, 3, 8] {
            let messages = try Self.messages(bytes, piece: piece)
            #expect(messages.map(\.opcode) == [.ping, .text, .binary], "piece \(piece)")
            #expect(messages.map(\.text) == ["p", "hello world", "next"], "piece \(piece)")
        }
    }

    /// A message that came as one plain frame — unfragmented, unmasked, uncompressed — says where
    /// that frame lies in the input as it was after the append that completed it, header
    /// included (the relay passes such frames on as those bytes); every other message says
    /// nothing, however the bytes are cut.
    @Test func plainFramesSayWhereTheyLie() throws {
        let deflate = PerMessageDeflate(.init())
        let long = String(repeating: "x", count: 300)
        let frames = [
            Self.frame(.text, "plain"), Self.frame(.text, "masked", masked: true),
            WebSocketWireFrame(rsv1: true, opcode: .text, payload: PerMessageDeflate(.init()).compress(ByteBuffer(string: "squeezed"))),
            Self.frame(.text, "frag", fin: false), Self.frame(.ping, "p"), Self.frame(.continuation, "ment"),
            Self.frame(.binary, "bin"), Self.frame(.text, long), Self.frame(.text, "last"),
        ]
        let plain: [String: [UInt8]] = ["plain": Self.bytes([frames[0]]), "bin": Self.bytes([frames[6]]), long: Self.bytes([frames[7]]),
                                        "last": Self.bytes([frames[8]])]
        let bytes = Self.bytes(frames)
        for piece in [0, 1, 7, 64] {
            var reader = WebSocketMessageReader(maxMessageSize: 1 << 20)
            var seen: [String] = []
            let step = piece == 0 ? bytes.count : piece
            for start in stride(from: 0, to: bytes.count, by: step) {
                reader.append(ByteBuffer(bytes: bytes[start..<min(start + step, bytes.count)]))
                let input = reader.bufferedInput
                while let message = try reader.next(deflate: deflate) {
                    let text = String(buffer: message.payload)
                    seen.append(text)
                    if let span = message.plainFrameSpan {
                        let lying = input.getBytes(at: span.lowerBound, length: span.count)
                        #expect(lying == plain[text], "piece \(piece): \(text.prefix(10))")
                    } else {
                        #expect(plain[text] == nil, "piece \(piece): \(text.prefix(10)) came plain but says nothing")
                    }
                }
            }
            #expect(seen == ["plain", "masked", "squeezed", "p", "fragment", "bin", long, "last"], "piece \(piece)")
        }
    }

    /// A compressed message, whole or in fragments (only the first carries the bit), comes out
    /// inflated; the compressor keeps its context across messages as the agreement allows.
    @Test func compressedMessagesAreInflated() throws {
        let sender = PerMessageDeflate(.init())
        let first = sender.compress(ByteBuffer(string: String(repeating: "usage ", count: 40)))
        let second = sender.compress(ByteBuffer(string: "response.completed"))
        let cut = second.readableBytes / 2
        let bytes = Self.bytes([
            WebSocketWireFrame(rsv1: true, opcode: .text, payload: first),
            WebSocketWireFrame(fin: false, rsv1: true, opcode: .text, maskKey: Self.mask, payload: second.getSlice(at: second.readerIndex, length: cut)!),
            WebSocketWireFrame(opcode: .continuation, maskKey: Self.mask,
                               payload: second.getSlice(at: second.readerIndex + cut, length: second.readableBytes - cut)!),
        ])
        let messages = try Self.messages(bytes, piece: 5, deflate: PerMessageDeflate(.init()))
        #expect(messages.map(\.text) == [String(repeating: "usage ", count: 40), "response.completed"])
        #expect(messages.allSatisfy { $0.opcode == .text })
    }

    @Test func aContinuationWithoutAMessageIsRefused() {
        #expect(throws: WebSocketMessageReader.ProtocolViolation.self) { try Self.messages(Self.bytes([Self.frame(.continuation, "x")])) }
    }

    @Test func aNewMessageBeforeTheLastEndedIsRefused() {
        let bytes = Self.bytes([Self.frame(.text, "a", fin: false), Self.frame(.text, "b")])
        #expect(throws: WebSocketMessageReader.ProtocolViolation.self) { try Self.messages(bytes) }
    }

    @Test func aCompressedMessageWithoutTheExtensionIsRefused() {
        #expect(throws: WebSocketMessageReader.ProtocolViolation.self) { try Self.messages(Self.bytes([Self.frame(.text, "x", compressed: true)])) }
    }

    /// Fragments each within the limit that together pass it end the session, as does a message
    /// that inflates past it.
    @Test func messagesPastTheLimitAreRefusedWhetherJoinedOrInflated() {
        let joined = Self.bytes([Self.frame(.text, String(repeating: "a", count: 60), fin: false),
                                 Self.frame(.continuation, String(repeating: "b", count: 60))])
        #expect(throws: WebSocketMessageReader.MessageTooLarge.self) { try Self.messages(joined, maxMessageSize: 100) }
        #expect((try? Self.messages(joined, maxMessageSize: 120))?.first?.text.count == 120)
        let inflating = PerMessageDeflate(.init()).compress(ByteBuffer(string: String(repeating: "z", count: 5000)))
        let bytes = Self.bytes([WebSocketWireFrame(rsv1: true, opcode: .text, payload: inflating)])
        #expect(throws: WebSocketMessageReader.MessageTooLarge.self) { try Self.messages(bytes, maxMessageSize: 1000, deflate: PerMessageDeflate(.init())) }
    }
}
