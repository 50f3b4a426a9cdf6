import NIOCore
import Testing
import Yamux

@Suite(.timeLimit(.minutes(1))) struct YamuxFrameParserTests {
    @Test func roundTripsFramesSplitAtEveryByte() throws {
        let frames: [YamuxFrame] = [
            .windowUpdate(1, delta: 262_144, flags: .syn), .data(1, ByteBuffer(string: "hello yamux"), flags: .ack),
            .ping(7, flags: .syn), .goAway(.normal), .data(3, ByteBuffer(), flags: .fin),
        ]
        var wire = ByteBuffer()
        for frame in frames { frame.write(to: &wire) }
        let bytes = Array(wire.readableBytesView)
        for split in 0...bytes.count {
            var parser = YamuxFrameParser(maximumPayload: 1024)
            var buffer = ByteBuffer(bytes: bytes[..<split])
            var decoded: [YamuxFrame] = []
            while let frame = try parser.next(from: &buffer) { decoded.append(frame) }
            buffer.writeBytes(bytes[split...])
            while let frame = try parser.next(from: &buffer) { decoded.append(frame) }
            #expect(decoded == frames, "split at \(split)")
        }
    }

    @Test func refusesOversizedPayloadsBeforeBufferingThem() {
        var parser = YamuxFrameParser(maximumPayload: 1000)
        var buffer = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 1001).write(to: &buffer)
        #expect(throws: YamuxFrameParser.ParseError.payloadTooLarge(1001)) { try parser.next(from: &buffer) }
    }

    @Test func windowUpdatesMayCarryAnyLength() throws {
        var parser = YamuxFrameParser(maximumPayload: 10)
        var buffer = ByteBuffer()
        YamuxFrame.windowUpdate(1, delta: .max).write(to: &buffer)
        #expect(try parser.next(from: &buffer) == .windowUpdate(1, delta: .max))
    }

    @Test func badHeadersAreErrors() {
        var parser = YamuxFrameParser(maximumPayload: 10)
        var badVersion = ByteBuffer(bytes: [2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: YamuxFrameParser.ParseError.header(.unsupportedVersion(2))) { try parser.next(from: &badVersion) }
        var badType = ByteBuffer(bytes: [0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: YamuxFrameParser.ParseError.header(.unknownFrameType(9))) { try parser.next(from: &badType) }
    }
}
