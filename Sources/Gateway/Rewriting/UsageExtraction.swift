import Foundation
public import NIOCore
public import PoolCore

/// The token usage of one finished response, from a `response.completed` event (§10.2).
public struct CompletedUsage: Hashable, Sendable {
    public var model: String?
    public var serviceTier: String?
    public var inputTokens: Int
    public var cachedTokens: Int
    public var outputTokens: Int
    /// Of the output, the tokens spent reasoning.
    public var reasoningTokens: Int = 0

    /// nil when the event carries no usage or no tokens were used.
    init?(_ event: CompletedEventWire) {
        guard let response = event.response, let usage = response.usage else { return nil }
        inputTokens = usage.input_tokens ?? 0
        outputTokens = usage.output_tokens ?? 0
        cachedTokens = usage.cached_tokens ?? 0
        reasoningTokens = usage.reasoning_tokens ?? 0
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
        var reasoning_tokens: Int?
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

    private static func readEvent(_ scanner: inout JSONFieldScanner, _ event: inout CompletedEventWire, _ key: JSONKey) -> Bool {
        switch key {
        case "type": event.type = scanner.string()
        case "response": return scanner.object(into: &event.response, from: Response(), readResponse)
        default: return scanner.skipValue()
        }
        return true
    }

    private static func readResponse(_ scanner: inout JSONFieldScanner, _ response: inout Response, _ key: JSONKey) -> Bool {
        switch key {
        case "model": response.model = scanner.string()
        case "service_tier": response.service_tier = scanner.string()
        case "usage": return scanner.object(into: &response.usage, from: Usage(), readUsage)
        default: return scanner.skipValue()
        }
        return true
    }

    private static func readUsage(_ scanner: inout JSONFieldScanner, _ usage: inout Usage, _ key: JSONKey) -> Bool {
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
        case "output_tokens_details":
            var withDetails: Usage?
            guard scanner.object(into: &withDetails, from: usage, { scanner, usage, key in
                guard key == "reasoning_tokens" else { return scanner.skipValue() }
                usage.reasoning_tokens = scanner.integer()
                return true
            }) else { return false }
            if let withDetails { usage = withDetails }
        default: return scanner.skipValue()
        }
        return true
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
    /// The response id and encrypted items the completed answer carries (continuation state the
    /// answering account issued).
    public private(set) var issuedContinuations: [(ContinuationBindings.Kind, String)] = []
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

    /// A prefix test by `memcmp`: it runs on every line of every answer, where the generic
    /// sequence comparisons cost more than the rest of the line's handling.
    private static func bytes(_ bytes: UnsafeRawBufferPointer, startWith prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count, let base = bytes.baseAddress else { return false }
        return memcmp(base, prefix.utf8Start, count) == 0
    }

    private mutating func examine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty || (line.count == 1 && line[0] == UInt8(ascii: "\r")) {
            namedEventIsCompletion = nil  // the event ended
            return
        }
        if Self.bytes(line, startWith: "event:") {
            var name = line.dropFirst(6)
            while name.first == UInt8(ascii: " ") { name = name.dropFirst() }
            while name.last == UInt8(ascii: "\r") || name.last == UInt8(ascii: " ") { name = name.dropLast() }
            let rest = UnsafeRawBufferPointer(rebasing: name)
            namedEventIsCompletion = rest.count == 18 && Self.bytes(rest, startWith: "response.completed")
            return
        }
        guard namedEventIsCompletion != false, line.count > 5, line.count <= lineLimit, Self.bytes(line, startWith: "data:") else { return }
        var payload = line.dropFirst(5)
        if payload.first == UInt8(ascii: " ") { payload = payload.dropFirst() }
        if payload.last == UInt8(ascii: "\r") { payload = payload.dropLast() }
        guard case (.completed(let found), _) = WebSocketEventRewriter.kind(ofBytes: UnsafeRawBufferPointer(rebasing: payload)) else { return }
        sawCompleted = true
        if let found { usage = found }
        issuedContinuations = ContinuationScan.issued(byCompletedEvent: UnsafeRawBufferPointer(rebasing: payload))
    }
}
