#if canImport(Glibc)
import Glibc
#endif

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

    /// Whether every byte is a `tchar` (and there is one): a name or a method. Looked up in a
    /// bitmap built from `isTokenByte`, since this runs over every header name both ways.
    package static func isToken(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty else { return false }
        let (low, high) = tokenBitmap
        for byte in bytes {
            let bit = UInt64(1) << UInt64(byte & 63)
            guard byte < 128, (byte < 64 ? low : high) & bit != 0 else { return false }
        }
        return true
    }

    /// Whether a header value may be sent or read as it is: no CR, LF or NUL in it (they would
    /// end the line — request smuggling — or cut the value short).
    package static func isValidValue(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return memchr(base, 0x0D, bytes.count) == nil && memchr(base, 0x0A, bytes.count) == nil && memchr(base, 0x00, bytes.count) == nil
    }

    /// `isTokenByte` for bytes 0–63 and 64–127, one bit each.
    private static let tokenBitmap: (UInt64, UInt64) = {
        var low: UInt64 = 0, high: UInt64 = 0
        for byte in 0..<64 where isTokenByte(UInt8(byte)) { low |= 1 << UInt64(byte) }
        for byte in 64..<128 where isTokenByte(UInt8(byte)) { high |= 1 << UInt64(byte - 64) }
        return (low, high)
    }()

    /// A header value without the spaces and tabs around it.
    package static func trimmed(_ value: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        var value = value
        while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        return value
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
