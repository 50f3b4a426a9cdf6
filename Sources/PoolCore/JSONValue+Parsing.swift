extension JSONValue {
    /// Parses JSON text (RFC 8259) into a value; nil for anything malformed, nested deeper than
    /// the scanner follows, or followed by more than whitespace.
    ///
    /// A direct parser rather than `JSONDecoder`: decoding this enum through `Decodable` tries
    /// each case in turn and throws for every miss, which made the rate-limit event of each
    /// WebSocket turn cost more than relaying the whole turn. Integers without fraction or
    /// exponent that fit 64 bits are `.integer`, other numbers `.number`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var scanner = JSONFieldScanner(bytes: bytes)
        guard let value = scanner.value(depth: 0) else { return nil }
        scanner.skipWhitespace()
        return scanner.index == bytes.count ? value : nil
    }

    public static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        bytes.withContiguousBytes { parse($0) }
    }
}

extension JSONFieldScanner {
    /// The whole value at the scanner, strictly as RFC 8259 spells it.
    mutating func value(depth: Int) -> JSONValue? {
        skipWhitespace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < Self.maximumDepth else { return nil }
            index += 1
            var members: [String: JSONValue] = [:]
            if consume(UInt8(ascii: "}")) { return .object(members) }
            repeat {
                skipWhitespace()
                guard let key = validatedString(), consume(UInt8(ascii: ":")), let member = value(depth: depth + 1) else { return nil }
                // Of repeated keys the first counts, as with JSONDecoder.
                if members[key] == nil { members[key] = member }
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "}")) ? .object(members) : nil
        case UInt8(ascii: "["):
            guard depth < Self.maximumDepth else { return nil }
            index += 1
            var elements: [JSONValue] = []
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            repeat {
                guard let element = value(depth: depth + 1) else { return nil }
                elements.append(element)
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "]")) ? .array(elements) : nil
        case UInt8(ascii: "\""):
            return validatedString().map(JSONValue.string)
        case UInt8(ascii: "t"):
            return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"):
            return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"):
            return literal("null") ? .null : nil
        default:
            return number()
        }
    }

    private mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
        index += count
        return true
    }

    /// Reads a number value into `value`; nil for a value of another kind (such as a string
    /// holding digits), which is skipped. False when there is no value at all.
    mutating func read(number value: inout Double?) -> Bool {
        skipWhitespace()
        let start = index
        if let number = number()?.numberValue {
            value = number
            return true
        }
        index = start
        value = nil
        return skipValue()
    }

    /// A number as RFC 8259 §6 spells it.
    mutating func number() -> JSONValue? {
        let start = index
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { return nil }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { return nil }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let negative = bytes[start] == UInt8(ascii: "-")
        let digits = index - start - (negative ? 1 : 0)
        if integral, digits <= 18 {
            // Short integers (token counts, timestamps, percentages) without a string made for them.
            var integer: Int64 = 0
            for position in (negative ? start + 1 : start)..<index { integer = integer * 10 + Int64(bytes[position] &- UInt8(ascii: "0")) }
            return .integer(negative ? -integer : integer)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let integer = Int64(text) { return .integer(integer) }
        return Double(text).flatMap { $0.isFinite ? .number($0) : nil }
    }

    /// The string at the index (at its opening quote), escapes decoded; nil unless it is valid
    /// JSON text: valid UTF-8, no raw control characters, known escapes only.
    private mutating func validatedString() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let end = stringEnd(from: index) else { return nil }
        let token = UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<(end - 1)])
        index = end
        return Self.unescaped(token)
    }

    /// A string's content (between its quotes) with escapes decoded; nil for a raw control
    /// character, an unknown escape, a lone surrogate or bytes that are not UTF-8.
    static func unescaped(_ token: UnsafeRawBufferPointer) -> String? {
        var isPlainASCII = true
        for byte in token where byte < 0x20 || byte >= 0x80 || byte == UInt8(ascii: "\\") {
            isPlainASCII = false
            break
        }
        // Nothing to decode or validate (the common case): the bytes are the string.
        if isPlainASCII { return String(decoding: token, as: UTF8.self) }
        guard token.contains(UInt8(ascii: "\\")) || token.contains(where: { $0 < 0x20 }) else { return String(validating: token, as: UTF8.self) }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(token.count)
        var position = 0
        while position < token.count {
            let byte = token[position]
            position += 1
            guard byte >= 0x20 else { return nil }
            guard byte == UInt8(ascii: "\\") else {
                decoded.append(byte)
                continue
            }
            guard position < token.count else { return nil }
            let escape = token[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                guard let scalar = unicodeEscape(token, at: &position) else { return nil }
                decoded.append(contentsOf: String(Character(scalar)).utf8)
            default: return nil
            }
        }
        return decoded.withUnsafeBytes { String(validating: $0, as: UTF8.self) }
    }

    /// The code point of `\uXXXX` (`position` just past the `u`), joining a surrogate pair.
    private static func unicodeEscape(_ token: UnsafeRawBufferPointer, at position: inout Int) -> Unicode.Scalar? {
        guard let high = hexQuad(token, at: &position) else { return nil }
        guard (0xD800..<0xDC00).contains(high) else { return Unicode.Scalar(high) }
        guard token.count - position >= 6, token[position] == UInt8(ascii: "\\"), token[position + 1] == UInt8(ascii: "u") else { return nil }
        position += 2
        guard let low = hexQuad(token, at: &position), (0xDC00..<0xE000).contains(low) else { return nil }
        return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    private static func hexQuad(_ token: UnsafeRawBufferPointer, at position: inout Int) -> UInt32? {
        guard token.count - position >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = token[position]
            position += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
