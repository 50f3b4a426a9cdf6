import Foundation
@testable import Gateway
import NIOCore
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

    /// The client's event is written again when the event, the pool's view or a countdown it shows
    /// changed, and only then: otherwise the one written last is what writing would make.
    @Test func rewrittenEventIsMadeAgainOnlyWhenItWouldDiffer() throws {
        var memo = RateLimitsEventMemo()
        let start = Date(timeIntervalSince1970: 4_102_000_000)
        let status = AggregateStatus(fiveHourUtilization: 30, fiveHourReset: start.addingTimeInterval(3600.3),
                                     weeklyUtilization: 10, weeklyReset: start.addingTimeInterval(86_400), planWeight: 10)
        var writes = 0
        func client(_ text: String, _ status: AggregateStatus, at now: Date) throws -> String {
            let bytes = Array(text.utf8)
            let event = try #require(bytes.withUnsafeBytes { memo.event(of: $0) })
            let output = bytes.withUnsafeBytes { raw in
                memo.rewritten(with: status, now: now) {
                    writes += 1
                    return WebSocketEventRewriter.rewriteRateLimits(event, in: raw, with: status, now: now)
                }
            }
            let fresh = bytes.withUnsafeBytes { WebSocketEventRewriter.rewriteRateLimits(event, in: $0, with: status, now: now) }
            #expect(Array(output.readableBytesView) == fresh)
            return String(buffer: output)
        }
        let first = try client(Self.event(primary: "10"), status, at: start)
        #expect(writes == 1)
        // The same event, view and countdowns (a tenth of a second later): the same bytes, not written again.
        #expect(try client(Self.event(primary: "10"), status, at: start.addingTimeInterval(0.1)) == first)
        #expect(writes == 1)
        // A second later the countdowns moved.
        #expect(try client(Self.event(primary: "10"), status, at: start.addingTimeInterval(1)) != first)
        #expect(writes == 2)
        var changed = status
        changed.fiveHourUtilization = 31
        _ = try client(Self.event(primary: "10"), changed, at: start.addingTimeInterval(1))
        #expect(writes == 3)
        _ = try client(Self.event(primary: "11"), changed, at: start.addingTimeInterval(1))
        #expect(writes == 4)
        // Bytes between that hold no event make the next repeat be written afresh.
        #expect(Array("{".utf8).withUnsafeBytes { memo.event(of: $0) } == nil)
        _ = try client(Self.event(primary: "11"), changed, at: start.addingTimeInterval(1))
        #expect(writes == 5)
    }
}
