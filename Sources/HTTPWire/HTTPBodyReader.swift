package import NIOCore

/// The body of one message, as its framing delimits it (RFC 9112 §6–7): a length, chunks, or
/// the connection's end. Bytes come out as slices of what was read; chunk extensions and
/// trailers are read past and dropped.
package struct HTTPBodyReader {
    package enum Framing: Equatable {
        case length(Int)
        case chunked
        case untilClose
    }

    package enum Event: Equatable {
        case data(ByteBuffer)
        case end
    }

    private enum State {
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case untilClose
    }

    private var state: State
    private let maxTrailerBytes: Int
    /// The longest chunk-size or trailer line accepted.
    static let maxLineBytes = 4 * 1024

    package init(_ framing: Framing, maxTrailerBytes: Int) {
        switch framing {
        case .length(let length): state = .fixed(remaining: length)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// Whether the body runs until the connection closes (its close is then its end).
    package var endsWithClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// The next piece of the body the unread bytes make, or nil when more are needed.
    package mutating func next(_ input: inout HTTPMessageInput) throws(HTTPWireFailure) -> Event? {
        while true {
            switch state {
            case .fixed(let remaining):
                if remaining == 0 { return .end }
                guard let slice = input.take(upTo: remaining) else { return nil }
                state = .fixed(remaining: remaining - slice.readableBytes)
                return .data(slice)
            case .untilClose:
                return input.take(upTo: .max).map(Event.data)
            case .chunkSize:
                guard let line = try input.readLine(limit: Self.maxLineBytes) else { return nil }
                let size = try Self.chunkSize(line)
                state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let slice = input.take(upTo: remaining) else { return nil }
                state = remaining == slice.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - slice.readableBytes)
                return .data(slice)
            case .chunkDataEnd:
                guard let line = try input.readLine(limit: Self.maxLineBytes) else { return nil }
                guard line.isEmpty else { throw HTTPWireFailure("chunk data longer than its size") }
                state = .chunkSize
            case .trailers(let bytes):
                guard let line = try input.readLine(limit: Self.maxLineBytes) else { return nil }
                if line.isEmpty {
                    input.releaseIfConsumed()
                    return .end
                }
                let total = bytes + line.count
                guard total <= maxTrailerBytes else { throw HTTPWireFailure("trailers larger than \(maxTrailerBytes) bytes") }
                state = .trailers(bytes: total)
            }
        }
    }

    private static func chunkSize(_ line: ArraySlice<UInt8>) throws(HTTPWireFailure) -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
            case UInt8(ascii: ";"), 0x20, 0x09: // extensions and spaces before them are ignored
                guard digits > 0 else { throw HTTPWireFailure("invalid chunk size") }
                return size
            default:
                throw HTTPWireFailure("invalid chunk size")
            }
            digits += 1
            guard digits <= 15 else { throw HTTPWireFailure("chunk size too large") }
            size = size * 16 + value
        }
        guard digits > 0 else { throw HTTPWireFailure("invalid chunk size") }
        return size
    }
}
