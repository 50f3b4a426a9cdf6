#if canImport(Glibc)
import Glibc
#endif

/// A forward-only reader over JSON bytes for picking a few fields out of a large document.
/// Values it is not asked for are skipped structurally; anything malformed makes the read fail.
public struct JSONFieldScanner {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    /// Deeper nesting is refused rather than followed.
    static let maximumDepth = 512

    public init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Reads an object value into `value`, calling `field` for each key with the scanner at
    /// the value, which `field` must read or skip. A value of another kind (null, …) is skipped
    /// and leaves `value` nil. False for malformed input, here or in what `field` reads.
    public mutating func object<Value>(into value: inout Value?, from initial: Value, _ field: (inout JSONFieldScanner, inout Value, JSONKey) -> Bool) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return skipValue() }
        index += 1
        var read = initial
        if !consume(UInt8(ascii: "}")) {
            repeat {
                skipWhitespace()
                guard let key = key(), consume(UInt8(ascii: ":")), field(&self, &read, key) else { return false }
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return false }
        }
        value = read
        return true
    }

    /// A member name, where it lies; nil when there is none here.
    private mutating func key() -> JSONKey? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let end = stringEnd(from: index) else { return nil }
        let start = index
        index = end
        return JSONKey(raw: UnsafeRawBufferPointer(rebasing: bytes[(start + 1)..<(end - 1)]))
    }

    /// A string value; nil, with the value skipped, for anything else (such as null).
    public mutating func string() -> String? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            _ = skipValue()
            return nil
        }
        let start = index
        guard let end = stringEnd(from: index) else { return nil }
        index = end
        let token = UnsafeRawBufferPointer(rebasing: bytes[(start + 1)..<(end - 1)])
        if !token.contains(UInt8(ascii: "\\")) { return String(decoding: token, as: UTF8.self) }
        // Escapes are rare in the fields read here.
        return Self.unescaped(token)
    }

    /// An integer value (a whole number written with a fraction or exponent is accepted);
    /// nil, with the value skipped, for anything else.
    public mutating func integer() -> Int? {
        var number: Double?
        skipWhitespace()
        let start = index
        if case .integer(let value)? = self.number() { return Int(exactly: value) }
        index = start
        guard read(number: &number), let value = number, value == value.rounded(), abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    /// `true` or `false`; nil, with the value skipped, for anything else.
    public mutating func boolean() -> Bool? {
        skipWhitespace()
        let rest = bytes[index...]
        if rest.starts(with: "true".utf8) {
            index += 4
            return true
        }
        if rest.starts(with: "false".utf8) {
            index += 5
            return false
        }
        _ = skipValue()
        return nil
    }

    /// Moves to the value of the first member named `key` of the object at the scanner; the
    /// members before it are skipped and nothing after it is read. False when the object has no
    /// such member or is malformed before it.
    public mutating func seek(toMember key: [UInt8]) -> Bool {
        guard consume(UInt8(ascii: "{")), !consume(UInt8(ascii: "}")) else { return false }
        repeat {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let end = stringEnd(from: index) else { return false }
            let name = UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<(end - 1)])
            index = end
            guard consume(UInt8(ascii: ":")) else { return false }
            if name.count == key.count, key.withUnsafeBytes({ name.isEmpty || memcmp(name.baseAddress!, $0.baseAddress!, name.count) == 0 }) {
                skipWhitespace()
                return true
            }
            guard skipValue() else { return false }
        } while consume(UInt8(ascii: ","))
        return false
    }

    /// The bytes between the quotes of the string value at the scanner, escapes as written;
    /// nil, with nothing read, for a value of another kind.
    public mutating func rawString() -> UnsafeRawBufferPointer? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let end = stringEnd(from: index) else { return nil }
        defer { index = end }
        return UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<(end - 1)])
    }

    /// Skips one value of any kind; false if it is malformed or the input ends inside it.
    public mutating func skipValue() -> Bool {
        skipWhitespace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            guard let end = stringEnd(from: index) else { return false }
            index = end
            return true
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard let end = stringEnd(from: index) else { return false }
                    index = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    guard depth <= Self.maximumDepth else { return false }
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default:
                    break
                }
                index += 1
            }
            return false
        default:
            let start = index
            while index < bytes.count, Self.isNumberByte(bytes[index]) || (bytes[index] >= UInt8(ascii: "a") && bytes[index] <= UInt8(ascii: "z")) {
                index += 1
            }
            return index > start
        }
    }

    /// The index just past the closing quote of the string opening at `start`.
    func stringEnd(from start: Int) -> Int? {
        var position = start + 1
        while position < bytes.count {
            let remaining = bytes.count - position
            guard let base = bytes.baseAddress, let found = memchr(base + position, Int32(UInt8(ascii: "\"")), remaining) else { return nil }
            let quote = base.distance(to: UnsafeRawPointer(found))
            // A quote preceded by an odd number of backslashes is escaped.
            var backslashes = 0
            while quote - backslashes - 1 > start, bytes[quote - backslashes - 1] == UInt8(ascii: "\\") { backslashes += 1 }
            if backslashes % 2 == 0 { return quote + 1 }
            position = quote + 1
        }
        return nil
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
    }
}
