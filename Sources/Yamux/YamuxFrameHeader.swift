public import NIOCore

/// The fixed 12-byte header that starts every yamux frame (hashicorp/yamux `spec.md`).
///
/// All fields are big-endian. What `length` means depends on `type`: payload size for data,
/// a window delta for window updates, an opaque value for pings and an error code for GoAway.
public struct YamuxFrameHeader: Hashable, Sendable {
    /// The only protocol version that exists.
    public static let protocolVersion: UInt8 = 0
    /// Size of the encoded header in bytes.
    public static let encodedSize = 12

    public enum FrameType: UInt8, Sendable, CaseIterable {
        case data = 0
        case windowUpdate = 1
        case ping = 2
        case goAway = 3
    }

    /// Flag bits; several may be set on one frame (e.g. SYN on the first data frame).
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        public static let syn = Flags(rawValue: 0x1)
        public static let ack = Flags(rawValue: 0x2)
        public static let fin = Flags(rawValue: 0x4)
        public static let rst = Flags(rawValue: 0x8)
    }

    public var type: FrameType
    public var flags: Flags
    public var streamID: UInt32
    public var length: UInt32

    public init(type: FrameType, flags: Flags = [], streamID: UInt32, length: UInt32) {
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.length = length
    }
}

/// Why a 12-byte header could not be accepted. Each one ends the session with a protocol-error GoAway.
public enum YamuxHeaderError: Error, Hashable, Sendable {
    case unsupportedVersion(UInt8)
    case unknownFrameType(UInt8)
}

extension YamuxFrameHeader {
    /// Appends the encoded header to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.protocolVersion)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(streamID)
        buffer.writeInteger(length)
    }

    /// Reads one header from the front of `buffer`.
    ///
    /// - Returns: `nil` (and consumes nothing) when fewer than 12 bytes are readable.
    /// - Throws: `YamuxHeaderError` for a bad version or type; the bytes are consumed.
    public static func read(from buffer: inout ByteBuffer) throws(YamuxHeaderError) -> YamuxFrameHeader? {
        guard buffer.readableBytes >= encodedSize,
              let version: UInt8 = buffer.readInteger(),
              let rawType: UInt8 = buffer.readInteger(),
              let rawFlags: UInt16 = buffer.readInteger(),
              let streamID: UInt32 = buffer.readInteger(),
              let length: UInt32 = buffer.readInteger()
        else { return nil }
        guard version == protocolVersion else { throw .unsupportedVersion(version) }
        guard let type = FrameType(rawValue: rawType) else { throw .unknownFrameType(rawType) }
        return YamuxFrameHeader(type: type, flags: Flags(rawValue: rawFlags), streamID: streamID, length: length)
    }
}
