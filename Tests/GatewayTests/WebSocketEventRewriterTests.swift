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

    @Test func rewritesRateLimitsInPlaceKeepingOtherFields() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let event = GatewayJSON.parse(Array(#"{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"primary":{"used_percent":3}},"credits":{"balance":"5"}}"#.utf8))
        let status = AggregateStatus(fiveHourUtilization: 12.345, fiveHourReset: now.addingTimeInterval(3600), weeklyUtilization: 40,
                                     weeklyReset: nil, planWeight: 11)
        let rewritten = try #require(GatewayJSON.parse(WebSocketEventRewriter.rewriteRateLimits(event, with: status, now: now)))
        #expect(rewritten["plan_type"]?.stringValue == "pro")
        #expect(rewritten["credits"]?["balance"]?.stringValue == "5")
        #expect(rewritten["plan_weight"]?.numberValue == 11)
        #expect(rewritten["rate_limits"]?["primary"]?["used_percent"]?.numberValue == 12.35)
        #expect(rewritten["rate_limits"]?["primary"]?["reset_at"]?.numberValue == 1_003_600)
        #expect(rewritten["rate_limits"]?["secondary"]?["used_percent"]?.numberValue == 40)
        #expect(rewritten["rate_limits"]?["secondary"]?["reset_at"] == nil)
        #expect(rewritten["rate_limits"]?["allowed"] == .bool(true))
    }
}
