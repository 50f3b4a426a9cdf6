import NIOCore
import Testing
import Yamux

@Suite(.timeLimit(.minutes(1))) struct YamuxFrameHeaderTests {
    @Test func encodesTheWireLayoutBigEndian() {
        let header = YamuxFrameHeader(type: .windowUpdate, flags: [.syn, .fin], streamID: 0x0102_0304, length: 0x0004_0000)
        var buffer = ByteBuffer()
        header.write(to: &buffer)
        #expect(Array(buffer.readableBytesView) == [0, 1, 0, 5, 1, 2, 3, 4, 0, 4, 0, 0])
    }

    @Test(arguments: YamuxFrameHeader.FrameType.allCases)
    func roundTripsEveryType(type: YamuxFrameHeader.FrameType) throws {
        let header = YamuxFrameHeader(type: type, flags: [.ack, .rst], streamID: .max, length: .max)
        var buffer = ByteBuffer()
        header.write(to: &buffer)
        let decoded = try YamuxFrameHeader.read(from: &buffer)
        #expect(decoded == header)
        #expect(buffer.readableBytes == 0)
    }

    @Test func waitsForTwelveBytesWithoutConsuming() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
        #expect(try YamuxFrameHeader.read(from: &buffer) == nil)
        #expect(buffer.readableBytes == 11)
    }

    @Test func rejectsAnotherVersion() {
        var buffer = ByteBuffer(bytes: [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: YamuxHeaderError.unsupportedVersion(1)) { try YamuxFrameHeader.read(from: &buffer) }
    }

    @Test func rejectsAnUnknownType() {
        var buffer = ByteBuffer(bytes: [0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: YamuxHeaderError.unknownFrameType(4)) { try YamuxFrameHeader.read(from: &buffer) }
    }
}
