import Foundation
@testable import Gateway
import Testing
import UpstreamHTTP

/// The targeted reader of `response.completed` against what a full JSON decode would find.
@Suite(.timeLimit(.minutes(1))) struct CompletedEventScanTests {
    func scan(_ text: String) -> CompletedEventWire? {
        Array(text.utf8).withUnsafeBytes { CompletedEventWire(json: $0) }
    }

    @Test func readsTheUsageFieldsAndSkipsTheAnswer() throws {
        let event = try #require(scan(#"""
            { "type" : "response.completed", "sequence_number": 41,
              "response": {"id":"resp_1","output":[{"type":"message","content":[{"text":"braces } ] { [ and \"quotes\\\" inside","annotations":[]}]}],
                "model":"gpt-5.5","service_tier":null,"usage":{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1024,"other":[1,2]},
                "output_tokens":7.0,"output_tokens_details":{"reasoning_tokens":3}},"metadata":{"usage":{"input_tokens":999}}},
              "extra": [true, false, null, -1.5e3] }
            """#))
        #expect(event.type == "response.completed")
        #expect(event.response?.model == "gpt-5.5")
        #expect(event.response?.service_tier == nil)
        #expect(event.response?.usage == CompletedEventWire.Usage(input_tokens: 1200, output_tokens: 7, cached_tokens: 1024, reasoning_tokens: 3))
    }

    @Test func decodesEscapedStrings() {
        #expect(scan(#"{"type":"response.completed","response":{"model":"gpt-\u0035\"x\"","usage":{}}}"#)?.response?.model == #"gpt-5"x""#)
    }

    @Test func missingPartsAreNil() {
        #expect(scan(#"{"type":"response.completed"}"#)?.response == nil)
        #expect(scan(#"{"type":"response.completed","response":null}"#)?.response == nil)
        #expect(scan(#"{"type":"response.completed","response":{"usage":null}}"#)?.response?.usage == nil)
        #expect(scan(#"{"type":"response.completed","response":{"usage":{"input_tokens":"many"}}}"#)?.response?.usage?.input_tokens == nil)
    }

    @Test func malformedInputIsRefused() {
        for text in [
            "", "{", "[]", "null", #"{"type":"response.completed","#, #"{"type":"response.completed","response":{"usage":{"input_tokens":5}"#,
            #"{"type":"resp"#, #"{"type" "x"}"#, #"{"a":[1,2}"#, #"{"type":"response.completed","response":{"usage":{"input_tokens":5 x}}}"#, #"{"a":"unterminated\"}"#, String(repeating: "[", count: 10_000),
        ] {
            #expect(scan(text) == nil, "\(text.prefix(40))")
        }
    }

    static let typeLast = Array(#"{"item":{"type":"error","text":"x\"}{[","list":[1,{"a":"]"}]},"status":500,"type":"error"}"#.utf8)

    /// Random cuts and byte flips of a real event never crash and never read past the input.
    @Test func mutatedEventsNeverCrash() {
        let event = Array(#"{"type":"response.completed","response":{"model":"m","output":[{"text":"a\"b{c"}],"usage":{"input_tokens":5,"output_tokens":6,"input_tokens_details":{"cached_tokens":1}}}}"#.utf8)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var bytes = Array(event.prefix(Int.random(in: 0...event.count, using: &generator)))
            for _ in 0..<Int.random(in: 0...3, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = bytes.withUnsafeBytes { CompletedEventWire(json: $0) }
            // The classifier's skip to the top-level type, on the same mutants and on mutants of
            // an event whose type comes after a nested object.
            _ = WebSocketEventRewriter.kind(of: bytes)
            var typeLast = Array(Self.typeLast.prefix(Int.random(in: 0...Self.typeLast.count, using: &generator)))
            if !typeLast.isEmpty { typeLast[Int.random(in: 0..<typeLast.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            _ = WebSocketEventRewriter.kind(of: typeLast)
        }
        #expect(WebSocketEventRewriter.kind(of: Self.typeLast).0 == .error(status: 500))
        #expect(event.withUnsafeBytes { CompletedEventWire(json: $0) }?.response?.usage?.output_tokens == 6)
        guard case .completed(let usage) = WebSocketEventRewriter.kind(of: event).0 else { Issue.record("not classified"); return }
        #expect(usage?.outputTokens == 6)
    }
}

/// The SSE tap finds the usage however the stream is cut into reads.
@Suite(.timeLimit(.minutes(1))) struct ServerSentEventUsageTapTests {
    static let stream = Array((
        "event: response.created\ndata: {\"type\":\"response.created\"}\n\n"
            + ": a comment line that is long enough to be carried over a buffer boundary\n"
            + "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"data: {\\\"type\\\":\\\"error\\\"}\"}\r\n\r\n"
            + "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-5.5\","
            + "\"usage\":{\"input_tokens\":11,\"output_tokens\":4,\"input_tokens_details\":{\"cached_tokens\":8}}}}\n\n").utf8)

    func usage(readsOf sizes: [Int], lineLimit: Int = 16 << 20) -> CompletedUsage? {
        var tap = ServerSentEventUsageTap(lineLimit: lineLimit)
        var offset = 0
        var index = 0
        while offset < Self.stream.count {
            let size = min(sizes[index % sizes.count], Self.stream.count - offset)
            Self.stream[offset..<(offset + size)].withUnsafeBytes { tap.consume($0) }
            offset += size
            index += 1
        }
        return tap.usage
    }

    @Test func everySplitPointGivesTheSameUsage() {
        for first in 1..<Self.stream.count {
            let found = usage(readsOf: [first, Self.stream.count])
            #expect(found?.inputTokens == 11 && found?.outputTokens == 4 && found?.cachedTokens == 8 && found?.model == "gpt-5.5", "split at \(first)")
        }
        for size in [1, 2, 3, 7, 64] {
            #expect(usage(readsOf: [size])?.inputTokens == 11, "reads of \(size) bytes")
        }
    }

    /// The `event:` line decides which data is read; without one, the data's own type does.
    @Test func theEventLineNamesTheEventsWorthReading() {
        let completed = #"{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":2}}}"#
        func usage(_ stream: String) -> CompletedUsage? {
            var tap = ServerSentEventUsageTap()
            Array(stream.utf8).withUnsafeBytes { tap.consume($0) }
            return tap.usage
        }
        #expect(usage("data: \(completed)\n\n")?.inputTokens == 3)
        #expect(usage("event: response.completed\r\ndata: \(completed)\r\n\r\n")?.inputTokens == 3)
        #expect(usage("event: response.output_text.delta\ndata: \(completed)\n\n") == nil)
        // The name holds for one event only.
        #expect(usage("event: response.output_text.delta\ndata: {}\n\ndata: \(completed)\n\n")?.inputTokens == 3)
    }

    @Test func dataLinesAboveTheLimitAreSkipped() {
        #expect(usage(readsOf: [Self.stream.count], lineLimit: 100) == nil)
        #expect(usage(readsOf: [5], lineLimit: 100) == nil)
        #expect(usage(readsOf: [5], lineLimit: 1000)?.outputTokens == 4)
    }
}
