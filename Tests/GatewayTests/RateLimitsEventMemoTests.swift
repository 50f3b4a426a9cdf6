@testable import Gateway
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct RateLimitsEventMemoTests {
    static func event(primary: String, plan: String = "plus") -> String {
        #"{"type":"codex.rate_limits","plan_type":"\#(plan)","rate_limits":{"allowed":true,"limit_reached":false,"#
            + #""primary":{"used_percent":\#(primary),"window_minutes":300,"reset_at":4102444800},"#
            + #""secondary":{"used_percent":20,"window_minutes":10080,"reset_at":4102444800}}}"#
    }

    static func read(_ memo: inout RateLimitsEventMemo, _ text: String) -> RateLimitsEvent? {
        Array(text.utf8).withUnsafeBytes { memo.event(of: $0) }
    }

    static func parsed(_ text: String) -> RateLimitsEvent? {
        Array(text.utf8).withUnsafeBytes { RateLimitsEvent(bytes: $0) }
    }

    /// Repeated, changed, shorter and longer events, and bytes that hold no event at all: the memo
    /// answers what reading the bytes afresh would, every time.
    @Test func answersWhatReadingWould() throws {
        var memo = RateLimitsEventMemo()
        let texts = [
            Self.event(primary: "10"), Self.event(primary: "10"), Self.event(primary: "11"), Self.event(primary: "1"),
            Self.event(primary: "10"), Self.event(primary: "10", plan: "pro"), #"{"type":"response.created"}"#, "not json", "",
            Self.event(primary: "10", plan: "pro"), Self.event(primary: "10.5", plan: "pro"),
        ]
        for text in texts {
            #expect(Self.read(&memo, text) == Self.parsed(text), "\(text)")
        }
        let last = try #require(Self.read(&memo, Self.event(primary: "10.5", plan: "pro")))
        #expect(last.primary?.usedPercent == 10.5)
        #expect(last.planType == "pro")
    }

    /// Bytes that are not an event leave the last event remembered: the next repeat of it is
    /// still read as that event, not as what came between.
    @Test func bytesWithoutAnEventDoNotReplaceTheLast() throws {
        var memo = RateLimitsEventMemo()
        _ = Self.read(&memo, Self.event(primary: "42"))
        #expect(Self.read(&memo, "{") == nil)
        let again = try #require(Self.read(&memo, Self.event(primary: "42")))
        #expect(again.primary?.usedPercent == 42)
        #expect(again == Self.parsed(Self.event(primary: "42")))
    }
}
