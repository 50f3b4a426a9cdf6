import Foundation
public import NIOCore
import PoolCore

/// The token usage of one finished response, from a `response.completed` event (§10.2).
public struct CompletedUsage: Hashable, Sendable {
    public var model: String?
    public var serviceTier: String?
    public var inputTokens: Int
    public var cachedTokens: Int
    public var outputTokens: Int

    /// nil when the event carries no usage or no tokens were used.
    init?(_ event: CompletedEventWire) {
        guard let response = event.response, let usage = response.usage else { return nil }
        inputTokens = usage.input_tokens ?? 0
        outputTokens = usage.output_tokens ?? 0
        cachedTokens = usage.cached_tokens ?? 0
        guard inputTokens > 0 || outputTokens > 0 else { return nil }
        model = response.model
        serviceTier = response.service_tier
    }
}

/// The fields of `response.completed` that usage accounting reads.
struct CompletedEventWire: Equatable {
    struct Response: Equatable {
        var model: String?
        var service_tier: String?
        var usage: Usage?
    }

    struct Usage: Equatable {
        var input_tokens: Int?
        var output_tokens: Int?
        var cached_tokens: Int?
    }

    var type: String?
    var response: Response?

    /// Reads only those fields in one pass, skipping the rest of the event — mostly the answer
    /// itself — without building it: a generic JSON decode of every completed event cost more
    /// than the rest of the proxying of its bytes. nil for malformed JSON or a non-object.
    init?(json: UnsafeRawBufferPointer) {
        var scanner = JSONFieldScanner(bytes: json)
        var event: CompletedEventWire?
        guard scanner.object(into: &event, from: CompletedEventWire(), Self.readEvent), let event else { return nil }
        self = event
    }

    private init() {}

    private static func readEvent(_ scanner: inout JSONFieldScanner, _ event: inout CompletedEventWire, _ key: String) -> Bool {
        switch key {
        case "type": event.type = scanner.string()
        case "response": return scanner.object(into: &event.response, from: Response(), readResponse)
        default: return scanner.skipValue()
        }
        return true
    }

    private static func readResponse(_ scanner: inout JSONFieldScanner, _ response: inout Response, _ key: String) -> Bool {
        switch key {
        case "model": response.model = scanner.string()
        case "service_tier": response.service_tier = scanner.string()
        case "usage": return scanner.object(into: &response.usage, from: Usage(), readUsage)
        default: return scanner.skipValue()
        }
        return true
    }

    private static func readUsage(_ scanner: inout JSONFieldScanner, _ usage: inout Usage, _ key: String) -> Bool {
        switch key {
        case "input_tokens": usage.input_tokens = scanner.integer()
        case "output_tokens": usage.output_tokens = scanner.integer()
        case "input_tokens_details":
            var withDetails: Usage?
            guard scanner.object(into: &withDetails, from: usage, { scanner, usage, key in
                guard key == "cached_tokens" else { return scanner.skipValue() }
                usage.cached_tokens = scanner.integer()
                return true
            }) else { return false }
            if let withDetails { usage = withDetails }
        default: return scanner.skipValue()
        }
        return true
    }
}

/// A forward-only reader over JSON bytes for picking a few fields out of a large document.
/// Values it is not asked for are skipped structurally; anything malformed makes the read fail.
struct JSONFieldScanner {
    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    /// Deeper nesting is refused rather than followed.
    private static let maximumDepth = 512

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Reads an object value into `value`, calling `field` for each key with the scanner at
    /// the value, which `field` must read or skip. A value of another kind (null, …) is skipped
    /// and leaves `value` nil. False for malformed input, here or in what `field` reads.
    mutating func object<Value>(into value: inout Value?, from initial: Value, _ field: (inout JSONFieldScanner, inout Value, String) -> Bool) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return skipValue() }
        index += 1
        var read = initial
        if !consume(UInt8(ascii: "}")) {
            repeat {
                skipWhitespace()
                guard let key = string(), consume(UInt8(ascii: ":")), field(&self, &read, key) else { return false }
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return false }
        }
        value = read
        return true
    }

    /// A string value; nil, with the value skipped, for anything else (such as null).
    mutating func string() -> String? {
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
        // Escapes are rare in the fields read here; the full decoder handles them.
        return try? JSONDecoder().decode(String.self, from: Data(UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
    }

    /// An integer value (a whole number written with a fraction or exponent is accepted);
    /// nil, with the value skipped, for anything else.
    mutating func integer() -> Int? {
        skipWhitespace()
        let start = index
        while index < bytes.count, Self.isNumberByte(bytes[index]) { index += 1 }
        guard index > start else {
            _ = skipValue()
            return nil
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if let value = Int(text) { return value }
        guard let value = Double(text), value.isFinite, value == value.rounded(), abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    /// `true` or `false`; nil, with the value skipped, for anything else.
    mutating func boolean() -> Bool? {
        skipWhitespace()
        for (literal, value) in [("true", true), ("false", false)] where bytes[index...].starts(with: literal.utf8) {
            index += literal.utf8.count
            return value
        }
        _ = skipValue()
        return nil
    }

    /// Moves to the value of the first member named `key` of the object at the scanner; the
    /// members before it are skipped and nothing after it is read. False when the object has no
    /// such member or is malformed before it.
    mutating func seek(toMember key: [UInt8]) -> Bool {
        guard consume(UInt8(ascii: "{")), !consume(UInt8(ascii: "}")) else { return false }
        repeat {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let end = stringEnd(from: index) else { return false }
            let name = UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<(end - 1)])
            index = end
            guard consume(UInt8(ascii: ":")) else { return false }
            if name.elementsEqual(key) {
                skipWhitespace()
                return true
            }
            guard skipValue() else { return false }
        } while consume(UInt8(ascii: ","))
        return false
    }

    /// The bytes between the quotes of the string value at the scanner, escapes as written;
    /// nil, with nothing read, for a value of another kind.
    mutating func rawString() -> UnsafeRawBufferPointer? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let end = stringEnd(from: index) else { return nil }
        defer { index = end }
        return UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<(end - 1)])
    }

    /// Skips one value of any kind; false if it is malformed or the input ends inside it.
    mutating func skipValue() -> Bool {
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
    private func stringEnd(from start: Int) -> Int? {
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

/// Follows an SSE byte stream as it passes through and reports the `response.completed`
/// event's usage. Bytes are never changed or held back; only complete `data:` lines of the
/// event of interest are parsed.
public struct ServerSentEventUsageTap: Sendable {
    /// The start of a data line that continues in the next buffer.
    private var line: [UInt8] = []
    /// The current line is of no interest (not `data:`, or too long): its bytes are dropped.
    private var skippingLine = false
    /// Data lines longer than this are not ours to parse (a completed event of a huge answer
    /// still fits: its output text is at most what the client already received).
    private let lineLimit: Int
    public private(set) var usage: CompletedUsage?
    /// A `response.completed` event went by (with or without usage): the answer is whole.
    public private(set) var sawCompleted = false
    private static let dataPrefix = Array("data:".utf8)

    public init(lineLimit: Int = 16 << 20) {
        self.lineLimit = lineLimit
    }

    public mutating func consume(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { consume($0) }
    }

    /// Lines that end inside `bytes` are examined where they lie; only a data line cut by the
    /// end of the buffer is copied.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var start = 0
        while start < bytes.count {
            guard let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
                carry(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                return
            }
            let end = base.distance(to: UnsafeRawPointer(newline))
            let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if line.isEmpty, !skippingLine {
                examine(piece)
            } else {
                carry(piece)
                if !skippingLine { line.withUnsafeBytes { examine($0) } }
                line.removeAll(keepingCapacity: line.count < 4096)
                skippingLine = false
            }
            start = end + 1
        }
    }

    private mutating func carry(_ bytes: UnsafeRawBufferPointer) {
        guard !skippingLine else { return }
        line.append(contentsOf: bytes)
        let prefixLength = min(line.count, Self.dataPrefix.count)
        if line.count > lineLimit || !line[..<prefixLength].elementsEqual(Self.dataPrefix[..<prefixLength]) {
            skippingLine = true
            line.removeAll()
        }
    }

    /// What the current event's `event:` line says: whether it is the completion. Its data is
    /// read only when it may be; nil (no `event:` line, or one cut by a buffer end) leaves it
    /// to the data's own type.
    private var namedEventIsCompletion: Bool?
    private static let eventPrefix = Array("event:".utf8)
    private static let completedName = Array("response.completed".utf8)

    private mutating func examine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty || (line.count == 1 && line[0] == UInt8(ascii: "\r")) {
            namedEventIsCompletion = nil  // the event ended
            return
        }
        if line.starts(with: Self.eventPrefix) {
            var name = line.dropFirst(Self.eventPrefix.count)
            while name.first == UInt8(ascii: " ") { name = name.dropFirst() }
            while name.last == UInt8(ascii: "\r") || name.last == UInt8(ascii: " ") { name = name.dropLast() }
            namedEventIsCompletion = name.elementsEqual(Self.completedName)
            return
        }
        guard namedEventIsCompletion != false, line.count > 5, line.count <= lineLimit, line.starts(with: Self.dataPrefix) else { return }
        var payload = line.dropFirst(5)
        if payload.first == UInt8(ascii: " ") { payload = payload.dropFirst() }
        if payload.last == UInt8(ascii: "\r") { payload = payload.dropLast() }
        guard case (.completed(let found), _) = WebSocketEventRewriter.kind(of: UnsafeRawBufferPointer(rebasing: payload)) else { return }
        sawCompleted = true
        if let found { usage = found }
    }
}
