public import NIOCore

/// One yamux frame: the header and, for data frames, the payload.
public struct YamuxFrame: Hashable, Sendable {
    public var header: YamuxFrameHeader
    /// Only data frames carry a payload (of `header.length` bytes).
    public var payload: ByteBuffer?

    public init(header: YamuxFrameHeader, payload: ByteBuffer? = nil) {
        self.header = header
        self.payload = payload
    }

    public static func data(_ streamID: UInt32, _ payload: ByteBuffer, flags: YamuxFrameHeader.Flags = []) -> YamuxFrame {
        YamuxFrame(header: YamuxFrameHeader(type: .data, flags: flags, streamID: streamID, length: UInt32(payload.readableBytes)), payload: payload)
    }

    public static func windowUpdate(_ streamID: UInt32, delta: UInt32, flags: YamuxFrameHeader.Flags = []) -> YamuxFrame {
        YamuxFrame(header: YamuxFrameHeader(type: .windowUpdate, flags: flags, streamID: streamID, length: delta))
    }

    public static func ping(_ opaque: UInt32, flags: YamuxFrameHeader.Flags) -> YamuxFrame {
        YamuxFrame(header: YamuxFrameHeader(type: .ping, flags: flags, streamID: 0, length: opaque))
    }

    public static func goAway(_ code: YamuxGoAwayCode) -> YamuxFrame {
        YamuxFrame(header: YamuxFrameHeader(type: .goAway, streamID: 0, length: code.rawValue))
    }

    /// Appends the encoded frame to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        header.write(to: &buffer)
        if var payload { buffer.writeBuffer(&payload) }
    }
}

/// Why a session ends (the GoAway frame's code).
public enum YamuxGoAwayCode: UInt32, Hashable, Sendable {
    case normal = 0
    case protocolError = 1
    case internalError = 2
}

/// Cuts frames out of a byte stream as they complete.
///
/// Rejects what cannot be valid before buffering it: a bad version or type, or a data frame
/// longer than the largest window this side ever grants (`maximumPayload`).
public struct YamuxFrameParser: Sendable {
    public enum ParseError: Error, Hashable, Sendable {
        case header(YamuxHeaderError)
        case payloadTooLarge(UInt32)
    }

    public let maximumPayload: UInt32
    private var pendingHeader: YamuxFrameHeader?

    public init(maximumPayload: UInt32) {
        self.maximumPayload = maximumPayload
    }

    /// The next complete frame in `buffer`, consuming it; nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(ParseError) -> YamuxFrame? {
        let header: YamuxFrameHeader
        if let pendingHeader {
            header = pendingHeader
        } else {
            let parsed: YamuxFrameHeader?
            do {
                parsed = try YamuxFrameHeader.read(from: &buffer)
            } catch {
                throw .header(error)
            }
            guard let parsed else { return nil }
            header = parsed
        }
        guard header.type == .data else {
            pendingHeader = nil
            return YamuxFrame(header: header)
        }
        guard header.length <= maximumPayload else { throw .payloadTooLarge(header.length) }
        guard let payload = buffer.readSlice(length: Int(header.length)) else {
            pendingHeader = header
            return nil
        }
        pendingHeader = nil
        return YamuxFrame(header: header, payload: payload)
    }
}
