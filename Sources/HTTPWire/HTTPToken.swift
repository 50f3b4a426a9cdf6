/// Byte classes of HTTP/1.1 heads (RFC 9110 §5.6), shared by the parsers and the writers.
package enum HTTPToken {
    /// `tchar`: what a header name is made of.
    package static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// A header value without the spaces and tabs around it.
    package static func trimmed(_ value: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        var value = value
        while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        return value
    }

    /// What may not appear in a header value, sent or read: it would end the line (request
    /// smuggling) or cut the value short.
    package static func isForbiddenInValue(_ byte: UInt8) -> Bool {
        byte == 0x0D || byte == 0x0A || byte == 0x00
    }

    /// Whether a header name is `lowercase` (ASCII, in lower case) in any case, without copying
    /// it to compare. Concrete overloads, not one generic: callers in other modules would get the
    /// unspecialised generic, which cost more than the rest of writing a request head.
    package static func name(_ name: String, is lowercase: StaticString) -> Bool {
        var name = name
        return name.withUTF8 { bytes in Self.name(UnsafeRawBufferPointer(bytes), is: lowercase) }
    }

    package static func name(_ name: Substring, is lowercase: StaticString) -> Bool {
        var name = name
        return name.withUTF8 { bytes in Self.name(UnsafeRawBufferPointer(bytes), is: lowercase) }
    }

    package static func name(_ name: Slice<UnsafeRawBufferPointer>, is lowercase: StaticString) -> Bool {
        Self.name(UnsafeRawBufferPointer(rebasing: name), is: lowercase)
    }

    package static func name(_ name: UnsafeRawBufferPointer, is lowercase: StaticString) -> Bool {
        Self.name(name, is: UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }

    package static func name(_ name: UnsafeRawBufferPointer, is lowercase: UnsafeRawBufferPointer) -> Bool {
        name.count == lowercase.count && matches(name, lowercase, at: 0)
    }

    package static func name(_ name: UnsafeRawBufferPointer, hasPrefix lowercase: StaticString) -> Bool {
        Self.name(name, hasPrefix: UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }

    package static func name(_ name: UnsafeRawBufferPointer, hasPrefix lowercase: UnsafeRawBufferPointer) -> Bool {
        name.count >= lowercase.count && matches(name, lowercase, at: 0)
    }

    package static func name(_ name: UnsafeRawBufferPointer, hasSuffix lowercase: UnsafeRawBufferPointer) -> Bool {
        name.count >= lowercase.count && matches(name, lowercase, at: name.count - lowercase.count)
    }

    /// Whether `name` has `lowercase` at `offset`, its letters in any case (the caller checked
    /// that it fits).
    private static func matches(_ name: UnsafeRawBufferPointer, _ lowercase: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        for index in 0..<lowercase.count {
            let byte = name[offset + index], lower = lowercase[index]
            guard byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower) else { return false }
        }
        return true
    }
}
