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
        fields.reserveCapacity(24)
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
            fields.append(HTTPHeaderField(name: nameBytes.startIndex..<nameBytes.endIndex, value: valueBytes.startIndex..<valueBytes.endIndex))
        }
    }

    /// The fields as NIO's headers, with a string for each name and value.
    package static func headers(_ fields: [HTTPHeaderField], in bytes: UnsafeRawBufferPointer) -> HTTPHeaders {
        HTTPHeaders(fields.map { field in (Self.string(bytes, field.name), Self.string(bytes, field.value)) })
    }

    package static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// What the framing headers of a head say (`content-length`, `transfer-encoding`, `connection`).
package struct HTTPFraming {
    package var contentLengths: [String] = []
    package var lastTransferCoding: String?
    package var closes = false
    package var keepsAlive = false
    package var upgrades = false
    package var hasUpgradeHeader = false

    /// The one content length the head gives; nil when it gives none; a failure when its values
    /// differ or are not a number.
    package func contentLength() throws(HTTPWireFailure) -> Int? {
        guard let first = contentLengths.first else { return nil }
        guard contentLengths.allSatisfy({ $0 == first }), first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(first) else {
            throw HTTPWireFailure("invalid content-length")
        }
        return length
    }

    /// Records a framing header; the length compared first settles every other header, and
    /// only a framing header's value is made a string.
    mutating func note(name: Slice<UnsafeRawBufferPointer>, value: Slice<UnsafeRawBufferPointer>) {
        let value = { String(decoding: UnsafeRawBufferPointer(rebasing: value), as: UTF8.self) }
        switch name.count {
        case 14 where HTTPToken.name(name, is: "content-length"):
            contentLengths.append(value())
        case 17 where HTTPToken.name(name, is: "transfer-encoding"):
            if let last = value().split(separator: ",").last { lastTransferCoding = last.trimmingSpaces.lowercased() }
        case 10 where HTTPToken.name(name, is: "connection"):
            for token in value().split(separator: ",") {
                let token = token.trimmingSpaces
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
}

private extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
