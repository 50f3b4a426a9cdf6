import Foundation
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct JSONValueParsingTests {
    static let documents = [
        #"{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"limit_reached":false,"primary":{"used_percent":12.5,"window_minutes":300,"reset_at":1800003600},"secondary":null},"credits":{"has_credits":false,"balance":"0"}}"#,
        #"[1, -2, 3.25, -0.5e-3, 1E+2, 0, -0, 9223372036854775807, 9223372036854775808, 12345678901234567890123]"#,
        // Around the length up to which integers are read digit by digit.
        #"[999999999999999999, -999999999999999999, 1000000000000000000, -1000000000000000000, 100000000000000000, -10]"#,
        #" { "escapes" : "q\"b\\s\/n\nt\tr\rb\bf\f u\u00e9 \u4e2d \ud83d\ude00" , "empty" : "" , "nested" : [[[]], {}, [{"a": [null, true, false]}]] } "#,
        #""just a string""#, "true", "null", "-17", "3.5",
        #"{"dup":1,"dup":2}"#,
        "{\"utf8\":\"héllo wörld — 中文 😀\"}",
    ]

    /// What Foundation's decoder makes of the text, as the reference.
    static func decoded(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test(arguments: documents) func agreesWithJSONDecoder(text: String) throws {
        let parsed = try #require(JSONValue.parse(Array(text.utf8)))
        let reference = try #require(Self.decoded(text))
        #expect(Self.sameValue(parsed, reference), "\(parsed) vs \(reference)")
    }

    /// Serializing writes what `JSONEncoder` (sorted keys, slashes unescaped) writes, byte for byte.
    @Test(arguments: documents) func serializesAsJSONEncoderDoes(text: String) throws {
        let value = try #require(JSONValue.parse(Array(text.utf8)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let reference = String(decoding: try encoder.encode(value), as: UTF8.self)
        #expect(String(decoding: value.serialized, as: UTF8.self) == reference)
        #expect(JSONValue.parse(value.serialized).map { Self.sameValue($0, value) } == true)
    }

    @Test func serializesEscapesAndNumbers() {
        let value = JSONValue.object(["text": .string("a\"b\\c/d\n\u{1}é"), "whole": .number(40), "part": .number(12.35), "big": .integer(-9_000_000_000)])
        #expect(String(decoding: value.serialized, as: UTF8.self) == #"{"big":-9000000000,"part":12.35,"text":"a\"b\\c/d\n\u0001é","whole":40}"#)
    }

    @Test func refusesMalformedText() {
        let malformed = [
            "", " ", "{", "}", "[1,]", "[,1]", #"{"a":1,}"#, #"{"a" 1}"#, #"{a:1}"#, "01", "-", "1.", "1e", "1e+", ".5", "+1", "--1",
            #""unterminated"#, #""bad \x escape""#, #""\u12""#, #""\ud83d""#, #""\ude00""#, "\"tab\tinside\"", "tru", "nul", "falsey",
            "[1] 2", #"{"a":1}}"#, "NaN", "Infinity", "1e999",
        ]
        for text in malformed {
            #expect(JSONValue.parse(Array(text.utf8)) == nil, "\(text)")
        }
        #expect(JSONValue.parse([0x22, 0xFF, 0x22]) == nil, "invalid UTF-8")
    }

    /// Nesting beyond the limit is refused instead of overflowing the stack.
    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONValue.parse(Array(deep.utf8)) == nil)
        let allowed = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(JSONValue.parse(Array(allowed.utf8)) != nil)
    }

    /// Random cuts and byte flips: never a crash, and the parser accepts what Foundation's decoder
    /// accepts (but trailing commas), with the same value.
    @Test func mutatedDocumentsAgreeWithJSONDecoder() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let source = Array(Self.documents.randomElement(using: &generator)!.utf8)
            var bytes = Array(source.prefix(Int.random(in: 0...source.count, using: &generator)))
            for _ in 0..<Int.random(in: 0...2, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "{"), UInt8(ascii: "]"),
                                                                            UInt8(ascii: ","), UInt8(ascii: "1"), UInt8(ascii: "e"), 0x80, 0x0A]
                    .randomElement(using: &generator)!
            }
            let parsed = JSONValue.parse(bytes)
            let reference = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
            switch (parsed, reference) {
            case (nil, nil): continue
            case (nil, _?) where Self.hasTrailingComma(bytes):
                continue  // Foundation tolerates `[1,]`; RFC 8259 does not, nor do we.
            case (let parsed?, let reference?):
                #expect(Self.sameValue(parsed, reference), "\(String(decoding: bytes, as: UTF8.self))")
                #expect(JSONValue.parse(parsed.serialized).map { Self.sameValue($0, parsed) } == true, "round trip of \(String(decoding: bytes, as: UTF8.self))")
            default:
                Issue.record("disagree on \(String(decoding: bytes, as: UTF8.self)): ours \(String(describing: parsed)), Foundation's \(String(describing: reference))")
            }
        }
    }

    static func hasTrailingComma(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
        return text.contains(",]") || text.contains(",}")
    }

    /// Equal, counting an integer and a decimal of the same value as the same number.
    static func sameValue(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.array(let left), .array(let right)):
            return left.count == right.count && zip(left, right).allSatisfy { sameValue($0, $1) }
        case (.object(let left), .object(let right)):
            return left.keys.sorted() == right.keys.sorted() && left.allSatisfy { key, value in right[key].map { sameValue(value, $0) } ?? false }
        default:
            if let left = left.numberValue, let right = right.numberValue { return left == right }
            return left == right
        }
    }
}
