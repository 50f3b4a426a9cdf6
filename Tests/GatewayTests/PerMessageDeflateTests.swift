@testable import Gateway
import NIOCore
import Testing
import UpstreamHTTP
import Zlib

@Suite(.timeLimit(.minutes(1))) struct PerMessageDeflateTests {
    @Test func compressesAsRFC7692Shows() throws {
        let codec = PerMessageDeflate(.init(ownWindowBits: 15, ownNoContextTakeover: true))
        let compressed = codec.compress(ByteBuffer(string: "Hello"))
        #expect(Array(compressed.readableBytesView) == [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        #expect(String(buffer: try codec.decompress(ByteBuffer(bytes: [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))) == "Hello")
    }

    @Test func keepsContextAcrossMessages() throws {
        let sender = PerMessageDeflate(.init())
        let receiver = PerMessageDeflate(.init())
        let message = String(repeating: #"{"type":"response.output_text.delta","delta":"abc"}"#, count: 20)
        let first = sender.compress(ByteBuffer(string: message))
        let second = sender.compress(ByteBuffer(string: message))
        // The second refers back to the first: far smaller.
        #expect(second.readableBytes < first.readableBytes)
        #expect(String(buffer: try receiver.decompress(first)) == message)
        #expect(String(buffer: try receiver.decompress(second)) == message)
    }

    /// Messages larger than any first guess at their size, one that does not compress and one
    /// that compresses a thousandfold, come back intact.
    @Test func largeMessagesRoundTrip() throws {
        var random = ByteBuffer()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<(300 * 1024 / 8) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            random.writeInteger(state)
        }
        let repetitive = ByteBuffer(string: String(repeating: #"{"type":"response.output_text.delta","delta":"x"}"#, count: 40_000))
        let sender = PerMessageDeflate(.init())
        let receiver = PerMessageDeflate(.init())
        for message in [random, repetitive, random] {
            let compressed = sender.compress(message)
            #expect(try receiver.decompress(compressed) == message)
        }
        let again = sender.compress(repetitive)
        #expect(again.readableBytes < repetitive.readableBytes / 100)
        #expect(try receiver.decompress(again) == repetitive)
        // An empty message is one byte and comes back empty, and the context goes on after it.
        let empty = sender.compress(ByteBuffer())
        #expect(Array(empty.readableBytesView) == [0x00])
        #expect(try receiver.decompress(empty).readableBytes == 0)
        #expect(try receiver.decompress(sender.compress(repetitive)) == repetitive)
    }

    /// A sender may end a message with a final block (RFC 7692 §7.2.3.4); the next message, from a
    /// fresh compressor, still inflates.
    @Test func aMessageEndingItsStreamLeavesTheNextReadable() throws {
        let receiver = PerMessageDeflate(.init())
        #expect(String(buffer: try receiver.decompress(ByteBuffer(bytes: [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))) == "Hello")
        #expect(String(buffer: try receiver.decompress(ByteBuffer(bytes: [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))) == "Hello")
    }

    @Test func refusesCorruptInput() {
        let codec = PerMessageDeflate(.init())
        #expect(throws: ZlibInflater.Failure.self) { _ = try codec.decompress(ByteBuffer(bytes: [0xff, 0xff, 0xff, 0x00, 0x12])) }
    }

    @Test func negotiatesAsServer() {
        #expect(PerMessageDeflate.accept(offers: "permessage-deflate; client_max_window_bits")?.response == "permessage-deflate")
        let strict = PerMessageDeflate.accept(offers: "permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
        #expect(strict?.response == "permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
        #expect(strict?.agreement == .init(ownWindowBits: 10, ownNoContextTakeover: true))
        // An offer with an impossible window falls back to the next offer, or to none.
        #expect(PerMessageDeflate.accept(offers: "permessage-deflate; server_max_window_bits=8, permessage-deflate")?.response == "permessage-deflate")
        #expect(PerMessageDeflate.accept(offers: "x-webkit-deflate-frame") == nil)
        #expect(PerMessageDeflate.accept(offers: nil) == nil)
    }

    @Test func readsTheServersAnswerAsClient() {
        #expect(PerMessageDeflate.accepted(response: "permessage-deflate") == .init())
        #expect(PerMessageDeflate.accepted(response: "permessage-deflate; client_no_context_takeover; client_max_window_bits=12")
            == .init(ownWindowBits: 12, ownNoContextTakeover: true))
        #expect(PerMessageDeflate.accepted(response: "permessage-deflate; mystery") == nil)
        #expect(PerMessageDeflate.accepted(response: nil) == nil)
    }
}
