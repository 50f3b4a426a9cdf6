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
        cachedTokens = usage.input_tokens_details?.cached_tokens ?? 0
        guard inputTokens > 0 || outputTokens > 0 else { return nil }
        model = response.model
        serviceTier = response.service_tier
    }
}

/// The fields of `response.completed` that usage accounting reads; everything else is skipped.
struct CompletedEventWire: Decodable {
    struct Response: Decodable {
        var model: String?
        var service_tier: String?
        var usage: Usage?
    }

    struct Usage: Decodable {
        struct Details: Decodable {
            var cached_tokens: Int?
        }

        var input_tokens: Int?
        var output_tokens: Int?
        var input_tokens_details: Details?
    }

    var type: String
    var response: Response?
}

/// Follows an SSE byte stream as it passes through and reports the `response.completed`
/// event's usage. Bytes are never changed or held back; only complete `data:` lines of the
/// event of interest are parsed.
public struct ServerSentEventUsageTap: Sendable {
    private var line: [UInt8] = []
    /// Data lines longer than this are not ours to parse (a completed event of a huge answer
    /// still fits: its output text is at most what the client already received).
    private let lineLimit: Int
    private var overflowed = false
    public private(set) var usage: CompletedUsage?
    private static let dataPrefix = Array("data:".utf8)

    public init(lineLimit: Int = 16 << 20) {
        self.lineLimit = lineLimit
    }

    public mutating func consume(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { consume($0) }
    }

    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        var start = 0
        while start < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                append(rest)
                return
            }
            append(UnsafeRawBufferPointer(rebasing: rest[..<newline]))
            finishLine()
            start += newline + 1
        }
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !overflowed else { return }
        if line.count + bytes.count > lineLimit {
            overflowed = true
            line.removeAll()
        } else {
            line.append(contentsOf: bytes)
        }
    }

    private mutating func finishLine() {
        defer { line.removeAll(keepingCapacity: line.count < 4096); overflowed = false }
        guard !overflowed, line.count > 5, line[0] == UInt8(ascii: "d"), line.starts(with: Self.dataPrefix) else { return }
        var payload = line.dropFirst(5)
        if payload.first == UInt8(ascii: " ") { payload = payload.dropFirst() }
        if payload.last == UInt8(ascii: "\r") { payload = payload.dropLast() }
        guard case (.completed(let found), _) = WebSocketEventRewriter.kind(of: payload), let found else { return }
        usage = found
    }
}
