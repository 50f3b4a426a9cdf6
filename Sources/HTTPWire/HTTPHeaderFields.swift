#if canImport(Glibc)
import Glibc
#endif
package import NIOHTTP1

/// Where one header line's name and value lie in the bytes of its head (value without the
/// spaces around it).
package struct HTTPHeaderField: Sendable, Equatable {
    package let name: Range<Int>
    package let value: Range<Int>

    package init(name: Range<Int>, value: Range<Int>) {
        self.name = name
        self.value = value
    }
}

/// The header lines of a complete head, checked, and found where they lie (no string is made
/// for them), with what their framing headers say gathered on the way.
package struct HTTPHeaderFields {
    package var fields: [HTTPHeaderField] = []
    package var framing = HTTPFraming()

    /// Reads the lines after the start line up to the blank line; the ranges are offsets into
    /// the buffer `lines` reads.
    package init(_ lines: inout HTTPHeadLines) throws(HTTPWireFailure) {
        var fields: [HTTPHeaderField] = []
        fields.reserveCapacity(24)
        try Self.forEachField(&lines, framing: &framing) { fields.append($0) }
        self.fields = fields
    }

    /// The same lines as NIO's headers, with a string for each name and value, and their framing
    /// (a request's head: the ranges are not kept).
    package static func headers(_ lines: inout HTTPHeadLines, in bytes: UnsafeRawBufferPointer) throws(HTTPWireFailure) -> (HTTPHeaders, HTTPFraming) {
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(16)
        var framing = HTTPFraming()
        try forEachField(&lines, framing: &framing) { field in pairs.append((string(bytes, field.name), string(bytes, field.value))) }
        return (HTTPHeaders(pairs), framing)
    }

    /// Checks each line up to the blank line and hands on where its name and value lie.
    private static func forEachField(_ lines: inout HTTPHeadLines, framing: inout HTTPFraming,
                                     _ body: (HTTPHeaderField) -> Void) throws(HTTPWireFailure) {
        while let line = lines.next(), !line.isEmpty {
            guard let first = line.first, first != 0x20, first != 0x09 else { throw HTTPWireFailure("folded header line") }
            let whole = UnsafeRawBufferPointer(rebasing: line)
            guard let colonPointer = memchr(whole.baseAddress!, Int32(UInt8(ascii: ":")), whole.count) else { throw HTTPWireFailure("header line without a name") }
            let colon = line.startIndex + whole.baseAddress!.distance(to: UnsafeRawPointer(colonPointer))
            guard colon > line.startIndex else { throw HTTPWireFailure("header line without a name") }
            let nameBytes = line[line.startIndex..<colon]
            guard HTTPToken.isToken(UnsafeRawBufferPointer(rebasing: nameBytes)) else { throw HTTPWireFailure("invalid header name") }
            let valueBytes = HTTPToken.trimmed(line[(colon + 1)...])
            guard HTTPToken.isValidValue(UnsafeRawBufferPointer(rebasing: valueBytes)) else { throw HTTPWireFailure("invalid header value") }
            framing.note(name: nameBytes, value: valueBytes)
            body(HTTPHeaderField(name: nameBytes.startIndex..<nameBytes.endIndex, value: valueBytes.startIndex..<valueBytes.endIndex))
        }
    }

    /// Fields as NIO's headers, with a string for each name and value.
    package static func headers(_ fields: [HTTPHeaderField], in bytes: UnsafeRawBufferPointer) -> HTTPHeaders {
        HTTPHeaders(fields.map { field in (Self.string(bytes, field.name), Self.string(bytes, field.value)) })
    }

    package static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// What the framing headers of a head say (`content-length`, `transfer-encoding`, `connection`),
/// read from their bytes: no string or array is made for them (they are in every head).
package struct HTTPFraming {
    package enum TransferCoding: Equatable {
        case chunked
        /// Any other coding as the last one, which this proxy does not decode.
        case other
    }

    /// The content length all `content-length` values agree on, once one was seen.
    private var length: Int?
    /// Digits of the first value: equal lengths with equal values are the same text.
    private var lengthDigits = 0
    private var lengthInvalid = false
    package private(set) var hasContentLength = false
    /// The last coding of the last `transfer-encoding` line that names one.
    package var lastTransferCoding: TransferCoding?
    package var closes = false
    package var keepsAlive = false
    package var upgrades = false
    package var hasUpgradeHeader = false

    /// The one content length the head gives; nil when it gives none; a failure when its values
    /// differ or are not a number.
    package func contentLength() throws(HTTPWireFailure) -> Int? {
        guard hasContentLength else { return nil }
        guard !lengthInvalid, let length else { throw HTTPWireFailure("invalid content-length") }
        return length
    }

    /// Records a framing header; the length compared first settles every other header.
    mutating func note(name: Slice<UnsafeRawBufferPointer>, value: Slice<UnsafeRawBufferPointer>) {
        switch name.count {
        case 14 where HTTPToken.name(name, is: "content-length"):
            noteContentLength(UnsafeRawBufferPointer(rebasing: value))
        case 17 where HTTPToken.name(name, is: "transfer-encoding"):
            var last: UnsafeRawBufferPointer?
            Self.forEachListElement(UnsafeRawBufferPointer(rebasing: value)) { last = $0 }
            if let last { lastTransferCoding = HTTPToken.name(last, is: "chunked") ? .chunked : .other }
        case 10 where HTTPToken.name(name, is: "connection"):
            Self.forEachListElement(UnsafeRawBufferPointer(rebasing: value)) { token in
                if HTTPToken.name(token, is: "close") { closes = true }
                if HTTPToken.name(token, is: "keep-alive") { keepsAlive = true }
                if HTTPToken.name(token, is: "upgrade") { upgrades = true }
            }
        case 7 where HTTPToken.name(name, is: "upgrade"):
            hasUpgradeHeader = true
        default:
            break
        }
    }

    /// A value must be digits only and fit an `Int`; a repeated one must be the same text.
    private mutating func noteContentLength(_ digits: UnsafeRawBufferPointer) {
        var value = 0
        var valid = !digits.isEmpty
        for digit in digits where valid {
            guard digit >= 0x30, digit <= 0x39 else { valid = false; break }
            let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowAgain) = times10.addingReportingOverflow(Int(digit - 0x30))
            if overflow || overflowAgain { valid = false } else { value = sum }
        }
        if !hasContentLength {
            hasContentLength = true
            length = valid ? value : nil
            lengthDigits = digits.count
            lengthInvalid = !valid
        } else if !valid || length != value || lengthDigits != digits.count {
            lengthInvalid = true
        }
    }

    /// The comma-separated elements of a list value, each without the spaces and tabs around it;
    /// empty stretches between commas are skipped as empty elements are (RFC 9110 §5.6.1), and an
    /// element of only spaces counts as an empty one that is not skipped.
    private static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for index in 0...value.count where index == value.count || value[index] == UInt8(ascii: ",") {
            if index > start { body(UnsafeRawBufferPointer(rebasing: HTTPToken.trimmed(value[start..<index]))) }
            start = index + 1
        }
    }
}
