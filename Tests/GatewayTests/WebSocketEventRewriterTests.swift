import Foundation
@testable import Gateway
import PoolCore
import Testing
import UpstreamHTTP

@Suite(.timeLimit(.minutes(1))) struct WebSocketEventRewriterTests {
    func kind(_ text: String) -> WebSocketEventRewriter.Kind {
        WebSocketEventRewriter.kind(of: Array(text.utf8)).0
    }

    @Test func findsTheTopLevelTypeWherever() {
        #expect(kind(#"{"response":{"type":"message"},"type":"response.completed"}"#) == WebSocketEventRewriter.Kind.completed(nil))
        let usage = #"{"type":"response.completed","response":{"model":"gpt-5.5","output":[{"type":"message"}],"usage":{"input_tokens":7,"output_tokens":3,"input_tokens_details":{"cached_tokens":2}}}}"#
        guard case .completed(let found) = kind(usage), let found else { Issue.record("no usage"); return }
        #expect([found.inputTokens, found.outputTokens, found.cachedTokens] == [Int]([7, 3, 2]))
        #expect(found.model == "gpt-5.5")
        let spaced = kind(#"{"type": "error", "status": 429}"#)
        #expect(spaced == WebSocketEventRewriter.Kind.error(status: 429))
        #expect(kind(#"{"status_code":429,"type":"error"}"#) == WebSocketEventRewriter.Kind.error(status: 429))
        #expect(kind(#"{"type":"codex.rate_limits","rate_limits":{}}"#) == WebSocketEventRewriter.Kind.rateLimits)
        #expect(kind(#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error"}}}"#) == WebSocketEventRewriter.Kind.failed)
        #expect(kind(#"{"response":{"status":"incomplete"},"type":"response.incomplete"}"#) == WebSocketEventRewriter.Kind.failed)
        // A nested "response.failed" is not the event's type.
        #expect(kind(#"{"type":"response.output_text.delta","delta":"response.failed","item":{"type":"response.failed"}}"#) == WebSocketEventRewriter.Kind.other)
    }

    @Test func ignoresTypesThatAreNotTopLevel() {
        // Quoted inside text, or in a nested object only.
        #expect(kind(#"{"type":"response.output_text.delta","delta":"{\"type\":\"error\"}"}"#) == WebSocketEventRewriter.Kind.other)
        #expect(kind(#"{"type":"response.output_item.done","item":{"type":"error"}}"#) == WebSocketEventRewriter.Kind.other)
        #expect(kind("not json at all \"type\":\"error\"") == WebSocketEventRewriter.Kind.other)
        #expect(kind("") == WebSocketEventRewriter.Kind.other)
        // Members before the type are skipped whole: strings with quotes and braces, nested types.
        #expect(kind(#"{"item":{"type":"error","text":"}\"{"},"list":[{"type":"error"},"]"],"n":1.5e3,"ok":true,"type":"error","status":500}"#)
            == WebSocketEventRewriter.Kind.error(status: 500))
        #expect(kind(#"{"item":{"type":"error"},"type":"response.output_text.delta"}"#) == WebSocketEventRewriter.Kind.other)
        #expect(kind(#"["type","error"]"#) == WebSocketEventRewriter.Kind.other)
        #expect(kind(#"{"item":{"type":"error""#) == WebSocketEventRewriter.Kind.other)
        #expect(kind(#"{"type":"error""#) == WebSocketEventRewriter.Kind.other)
    }

    /// Rewrites an event's text as the relay does: read where it lies, written from its bytes.
    func rewritten(_ text: String, with status: AggregateStatus, now: Date) throws -> (text: String, json: JSONValue) {
        let bytes = Array(text.utf8)
        let output = try bytes.withUnsafeBytes { raw in
            let event = try #require(RateLimitsEvent(bytes: raw))
            return WebSocketEventRewriter.rewriteRateLimits(event, in: raw, with: status, now: now)
        }
        return (String(decoding: output, as: UTF8.self), try #require(GatewayJSON.parse(output), "valid JSON: \(String(decoding: output, as: UTF8.self))"))
    }

    @Test func rewritesRateLimitsInPlaceKeepingOtherFields() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let status = AggregateStatus(fiveHourUtilization: 12.345, fiveHourReset: now.addingTimeInterval(3600), weeklyUtilization: 40,
                                     weeklyReset: nil, planWeight: 11)
        let (text, rewritten) = try rewritten(
            #"{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"primary":{"used_percent":3}},"credits":{ "balance" : "5" }}"#,
            with: status, now: now)
        #expect(rewritten["plan_type"]?.stringValue == "pro")
        #expect(rewritten["credits"]?["balance"]?.stringValue == "5")
        #expect(text.contains(#""credits":{ "balance" : "5" }"#), "members not replaced are copied as they came")
        #expect(rewritten["plan_weight"]?.numberValue == 11)
        #expect(rewritten["limit_name"]?.stringValue == "codex")
        #expect(rewritten["rate_limits"]?["primary"]?["used_percent"]?.numberValue == 12.35)
        #expect(rewritten["rate_limits"]?["primary"]?["reset_at"]?.numberValue == 1_003_600)
        #expect(rewritten["rate_limits"]?["primary"]?["reset_after_seconds"]?.numberValue == 3600)
        #expect(rewritten["rate_limits"]?["primary"]?["window_minutes"]?.numberValue == 300)
        #expect(rewritten["rate_limits"]?["secondary"]?["used_percent"]?.numberValue == 40)
        #expect(rewritten["rate_limits"]?["secondary"]?["window_minutes"]?.numberValue == 10080)
        #expect(rewritten["rate_limits"]?["secondary"]?["reset_at"] == nil)
        #expect(rewritten["rate_limits"]?["allowed"] == .bool(true))
        #expect(rewritten["rate_limits"]?["limit_reached"] == nil, "only sent flags are set")
    }

    /// The pool's flags replace the account's; the account's plan weight and a repeated window
    /// do not survive; the limit's name stays as sent; every member appears once.
    @Test func replacedMembersAppearOnceWhateverUpstreamRepeated() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let exhausted = AggregateStatus(fiveHourUtilization: 100, fiveHourReset: nil, weeklyUtilization: 20, weeklyReset: nil, planWeight: 0)
        let (text, rewritten) = try rewritten(
            #"{"plan_weight":4,"type":"codex.rate_limits","metered_limit_name":"codex","rate_limits":{"primary":null,"allowed":true,"#
            + #""limit_reached":false,"primary":{"used_percent":1},"note":[1,{"a":"}"}],"allowed":true},"plan_weight":5,"rate_limits":{}}"#,
            with: exhausted, now: now)
        #expect(rewritten["plan_weight"] == nil, "no weight to report: the account's is not passed on")
        #expect(rewritten["limit_name"] == nil)
        #expect(rewritten["metered_limit_name"]?.stringValue == "codex")
        #expect(rewritten["rate_limits"]?["allowed"] == .bool(false))
        #expect(rewritten["rate_limits"]?["limit_reached"] == .bool(true))
        #expect(rewritten["rate_limits"]?["primary"]?["used_percent"]?.numberValue == 100)
        #expect(rewritten["rate_limits"]?["note"] == .array([.integer(1), .object(["a": .string("}")])]))
        for name in ["\"rate_limits\"", "\"allowed\"", "\"limit_reached\"", "\"primary\"", "\"secondary\"", "\"plan_weight\""] {
            #expect(text.components(separatedBy: name).count - 1 <= 1, "\(name) once in \(text)")
        }
    }

    /// An event without `rate_limits`, or with another kind of value there, gets the pool's.
    @Test func anEventWithoutWindowsGetsThePools() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let status = AggregateStatus(fiveHourUtilization: 5, fiveHourReset: nil, weeklyUtilization: 6, weeklyReset: nil, planWeight: 2.5)
        for text in [#"{"type":"codex.rate_limits"}"#, #"{"type":"codex.rate_limits","rate_limits":null}"#, #" { "type" : "codex.rate_limits" , "rate_limits" : [ ] } "#] {
            let (_, rewritten) = try rewritten(text, with: status, now: now)
            #expect(rewritten["rate_limits"]?["primary"]?["used_percent"]?.numberValue == 5)
            #expect(rewritten["rate_limits"]?["secondary"]?["used_percent"]?.numberValue == 6)
            #expect(rewritten["plan_weight"]?.numberValue == 2.5)
            #expect(rewritten["type"]?.stringValue == "codex.rate_limits")
        }
    }

    /// Another family's event: its windows become the pool's view of that family, the rest stays.
    @Test func anotherFamilysEventGetsThatFamilysWindows() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let text = #"{"type":"codex.rate_limits","limit_name":"GPT-5.3-Codex-Spark","metered_limit_name":"codex_other","#
            + #""rate_limits":{"allowed":true,"primary":{"used_percent":80,"window_minutes":300},"secondary":{"used_percent":1,"window_minutes":10080}}}"#
        var windows = RateLimitSnapshot()
        windows.weekly = RateLimitWindow(usedPercent: 33.333, resetAt: now.addingTimeInterval(60), windowMinutes: 10080)
        let family = AdditionalRateLimit(id: "codex_other", name: "GPT-5.3-Codex-Spark", windows: windows)
        let bytes = Array(text.utf8)
        let output = try bytes.withUnsafeBytes { raw in
            WebSocketEventRewriter.rewriteRateLimits(try #require(RateLimitsEvent(bytes: raw)), in: raw, family: family, now: now)
        }
        let rewritten = try #require(GatewayJSON.parse(output))
        #expect(rewritten["rate_limits"]?["primary"]?["used_percent"]?.numberValue == 33.33)
        #expect(rewritten["rate_limits"]?["primary"]?["window_minutes"]?.numberValue == 10080)
        #expect(rewritten["rate_limits"]?["primary"]?["reset_after_seconds"]?.numberValue == 60)
        #expect(rewritten["rate_limits"]?["secondary"] == .null)
        #expect(rewritten["rate_limits"]?["allowed"] == .bool(true))
        #expect(rewritten["limit_name"]?.stringValue == "GPT-5.3-Codex-Spark")
        #expect(rewritten["plan_weight"] == nil)
    }

    /// Random cuts and byte flips of real-looking events: never a crash; whatever upstream sent
    /// that is JSON comes out as JSON, with the pool's windows in it.
    @Test func mutatedEventsNeverBreakTheRewrite() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let status = AggregateStatus(fiveHourUtilization: 12.5, fiveHourReset: now.addingTimeInterval(60), weeklyUtilization: 40,
                                     weeklyReset: now.addingTimeInterval(600), planWeight: 11)
        let sources = [
            #"{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"limit_reached":false,"primary":{"used_percent":10,"window_minutes":300,"reset_at":4102444800},"secondary":{"used_percent":10,"window_minutes":10080,"reset_after_seconds":3600}},"credits":{"has_credits":true,"unlimited":false,"balance":"12.5"},"plan_weight":3}"#,
            #"{ "rate_limits" : { "primary" : null , "note" : [ 1 , { "a" : "}\"" } ] } , "type" : "codex.rate_limits" , "metered_limit_name" : "codex_other" }"#,
        ].map { Array($0.utf8) }
        var generator = SystemRandomNumberGenerator()
        var rewrittenJSON = 0
        for _ in 0..<5_000 {
            let source = sources.randomElement(using: &generator)!
            var bytes = Bool.random(using: &generator) ? source : Array(source.prefix(Int.random(in: source.count / 2...source.count, using: &generator)))
            for _ in 0..<Int.random(in: 0...2, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "{"), UInt8(ascii: "]"),
                                                                            UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "1"), UInt8(ascii: "e"), 0x80]
                    .randomElement(using: &generator)!
            }
            let output = bytes.withUnsafeBytes { raw -> [UInt8]? in
                guard let event = RateLimitsEvent(bytes: raw) else { return nil }
                _ = RateLimitSnapshot(rateLimitsEvent: event, now: now)
                return WebSocketEventRewriter.rewriteRateLimits(event, in: raw, with: status, now: now)
            }
            guard let output, GatewayJSON.parse(bytes) != nil else { continue }
            rewrittenJSON += 1
            let rewritten = GatewayJSON.parse(output)
            #expect(rewritten?["rate_limits"]?["secondary"]?["used_percent"]?.numberValue == 40, "\(String(decoding: bytes, as: UTF8.self)) → \(String(decoding: output, as: UTF8.self))")
        }
        // About a third of the cases stay JSON (no flip, or one inside a string); far fewer would mean the check ran idle.
        #expect(rewrittenJSON > 100)
    }

    /// What is not one whole object of this type is not read as one (and goes to the client as it came).
    @Test func onlyAWholeRateLimitsObjectIsRead() {
        for text in [#"{"type":"codex.rate_limits","rate_limits":{}"#, #"{"type":"codex.rate_limits"} {}"#, #"["type","codex.rate_limits"]"#,
                     #"{"type":"error","rate_limits":{}}"#, #"{"rate_limits":{}}"#, #"{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":}}}"#, ""] {
            #expect(Array(text.utf8).withUnsafeBytes { RateLimitsEvent(bytes: $0) } == nil, "\(text)")
        }
    }
}
