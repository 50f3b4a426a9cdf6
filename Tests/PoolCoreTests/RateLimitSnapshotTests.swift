import Foundation
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct RateLimitSnapshotTests {
    @Test func headersWithBothWindows() {
        let snapshot = RateLimitSnapshot(headers: [
            ("X-Codex-Primary-Used-Percent", "12.5"), ("x-codex-primary-window-minutes", "300"), ("x-codex-primary-reset-at", "1800003600"),
            ("x-codex-secondary-used-percent", "40"), ("x-codex-secondary-window-minutes", "10080"), ("x-codex-secondary-reset-at", "1800086400"),
            ("x-codex-plan-type", "Pro"), ("x-codex-credits-has-credits", "False"), ("x-codex-credits-unlimited", "1"),
            ("x-codex-credits-balance", "0"), ("X-OCM-Plan-Weight", "11"),
        ])
        #expect(snapshot.fiveHour == RateLimitWindow(usedPercent: 12.5, resetAt: t0 + hour, windowMinutes: 300))
        #expect(snapshot.weekly == RateLimitWindow(usedPercent: 40, resetAt: t0 + 24 * hour, windowMinutes: 10080))
        #expect(snapshot.planType == "pro")
        #expect(snapshot.peerPlanWeight == 11)
        #expect(snapshot.credits == RateLimitCredits(hasCredits: false, unlimited: true, balance: "0"))
        #expect(snapshot.weeklyWindowStart == t0 + 24 * hour - 7 * 24 * hour)
    }

    /// A header sent twice (in any case) counts once, as first sent.
    @Test func theFirstOfRepeatedHeadersCounts() {
        let snapshot = RateLimitSnapshot(headers: [
            ("x-codex-primary-used-percent", " 10 "), ("X-Codex-Primary-Used-Percent", "90"), ("x-codex-primary-used-percent", "50"),
        ])
        #expect(snapshot.fiveHour?.usedPercent == 10)
    }

    /// Weekly-only plans put the week in "primary"; the window length decides.
    @Test func weeklyWindowReportedAsPrimaryIsWeekly() {
        let snapshot = RateLimitSnapshot(headers: [
            ("x-codex-primary-used-percent", "70"), ("x-codex-primary-window-minutes", "10080"), ("x-codex-primary-reset-at", "1800086400"),
        ])
        #expect(snapshot.fiveHour == nil)
        #expect(snapshot.weekly?.usedPercent == 70)
    }

    @Test func withoutWindowLengthsTheSlotDecides() {
        let snapshot = RateLimitSnapshot(headers: [("x-codex-primary-used-percent", "5"), ("x-codex-secondary-used-percent", "6")])
        #expect(snapshot.fiveHour?.usedPercent == 5)
        #expect(snapshot.weekly?.usedPercent == 6)
    }

    @Test func anotherFamilyIsUsedOnlyWhenCodexIsAbsent() {
        let both = RateLimitSnapshot(headers: [
            ("x-codex-active-limit", "codex_bengalfox"), ("x-codex-bengalfox-primary-used-percent", "90"), ("x-codex-primary-used-percent", "10"),
        ])
        #expect(both.fiveHour?.usedPercent == 10)
        let onlyOther = RateLimitSnapshot(headers: [("x-codex-active-limit", " Codex_BengalFox "), ("x-codex-bengalfox-primary-used-percent", "90")])
        #expect(onlyOther.fiveHour?.usedPercent == 90)
    }

    @Test func emptyOrMalformedHeadersCarryNoData() {
        #expect(!RateLimitSnapshot(headers: [("content-type", "text/event-stream")]).hasUsageData)
        #expect(!RateLimitSnapshot(headers: [("x-codex-primary-used-percent", "0")]).hasUsageData, "0 % with nothing else is no window")
        #expect(!RateLimitSnapshot(headers: [("x-codex-primary-used-percent", "lots"), ("x-codex-secondary-used-percent", "nan")]).hasUsageData)
        #expect(!RateLimitSnapshot(headers: [("x-codex-primary-used-percent", "-3")]).hasUsageData)
        #expect(RateLimitSnapshot(headers: [("x-codex-primary-used-percent", "1"), ("x-codex-primary-reset-at", "-5")]).fiveHour?.resetAt == nil)
    }

    @Test func rateLimitsEvent() throws {
        let event = """
            {"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"limit_reached":false,
             "primary":{"used_percent":12.5,"window_minutes":300,"reset_after_seconds":3600},
             "secondary":{"used_percent":40.0,"window_minutes":10080,"reset_after_seconds":86400,"reset_at":1800086400}},
             "credits":{"has_credits":false,"unlimited":false,"balance":"0"},"metered_limit_name":"codex","limit_name":"codex","promo":null,
             "plan_weight":11}
            """
        let snapshot = try #require(RateLimitSnapshot(rateLimitsEvent: Data(event.utf8), now: t0))
        #expect(snapshot.fiveHour == RateLimitWindow(usedPercent: 12.5, resetAt: t0 + hour, windowMinutes: 300))
        #expect(snapshot.weekly == RateLimitWindow(usedPercent: 40, resetAt: t0 + 24 * hour, windowMinutes: 10080))
        #expect(snapshot.planType == "pro" && snapshot.peerPlanWeight == 11)
    }

    @Test func otherEventsAndFamiliesAreNotCodexsOwnLimits() {
        #expect(RateLimitSnapshot(rateLimitsEvent: Data(#"{"type":"response.created"}"#.utf8), now: t0) == nil)
        // Another family's event is that family's reading, not Codex's own windows.
        let other = RateLimitSnapshot(rateLimitsEvent: Data(#"{"type":"codex.rate_limits","metered_limit_name":"codex_other","rate_limits":{"primary":{"used_percent":5}}}"#.utf8), now: t0)
        #expect(other?.hasUsageData == false)
        #expect(other?.additional.map(\.id) == ["codex-other"])
        #expect(RateLimitSnapshot(rateLimitsEvent: Data("not json".utf8), now: t0) == nil)
        // A field of an unexpected type counts as absent; the rest is still read.
        let odd = RateLimitSnapshot(rateLimitsEvent: Data(#"{"type":"codex.rate_limits","plan_type":7,"rate_limits":{"primary":{"used_percent":5,"window_minutes":"300"}},"credits":{"has_credits":true,"balance":12.5}}"#.utf8), now: t0)
        #expect(odd?.fiveHour?.usedPercent == 5)
        #expect(odd?.planType == nil)
        #expect(odd?.credits == RateLimitCredits(hasCredits: true, unlimited: false, balance: "12.5"))
    }

    /// Absurd delays and lengths from upstream are refused, not turned into dates or integers
    /// that cannot be written back (they would stop the process).
    @Test func absurdDelaysAndLengthsAreRefused() throws {
        let text = #"{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":5,"reset_after_seconds":1e300},"#
            + #""secondary":{"used_percent":7,"window_minutes":1e300,"reset_after_seconds":-5}}}"#
        let event = RateLimitSnapshot(rateLimitsEvent: Data(text.utf8), now: t0)
        #expect(event?.fiveHour == RateLimitWindow(usedPercent: 5))
        #expect(event?.weekly == RateLimitWindow(usedPercent: 7))
        let usage = try RateLimitSnapshot(usageResponse: Data(#"{"rate_limit":{"primary_window":{"used_percent":3,"limit_window_seconds":1e300,"reset_after_seconds":1e300}}}"#.utf8), now: t0)
        #expect(usage.fiveHour == RateLimitWindow(usedPercent: 3))
        let rejection = RateLimitRejection(headers: [], body: Data(#"{"error":{"resets_in_seconds":1e300}}"#.utf8), now: t0)
        #expect(rejection.resetsAt == nil)
        // In range, a delay still counts from now.
        let near = RateLimitSnapshot(rateLimitsEvent: Data(#"{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":5,"reset_after_seconds":60}}}"#.utf8), now: t0)
        #expect(near?.fiveHour?.resetAt == t0.addingTimeInterval(60))
    }

    @Test func usageAPIResponse() throws {
        let body = """
            {"user_id":"user-a","account_id":"acct-a","email":"a@example.com","plan_type":"plus",
             "rate_limit":{"allowed":true,"limit_reached":false,
               "primary_window":{"used_percent":12,"limit_window_seconds":18000,"reset_after_seconds":3600,"reset_at":1800003600},
               "secondary_window":{"used_percent":40,"limit_window_seconds":604800,"reset_after_seconds":86400,"reset_at":1800086400}},
             "code_review_rate_limit":null,"additional_rate_limits":null,
             "credits":{"has_credits":false,"unlimited":false,"balance":"0","approx_local_messages":[0,0]},"promo":null}
            """
        let snapshot = try RateLimitSnapshot(usageResponse: Data(body.utf8), now: t0)
        #expect(snapshot.fiveHour == RateLimitWindow(usedPercent: 12, resetAt: t0 + hour, windowMinutes: 300))
        #expect(snapshot.weekly == RateLimitWindow(usedPercent: 40, resetAt: t0 + 24 * hour, windowMinutes: 10080))
        #expect(snapshot.planType == "plus")
        #expect(snapshot.credits?.balance == "0")
    }

    @Test func weeklyOnlyUsageResponse() throws {
        let body = #"{"plan_type":"free","rate_limit":{"primary_window":{"used_percent":55,"limit_window_seconds":604800,"reset_at":1800086400},"secondary_window":null}}"#
        let snapshot = try RateLimitSnapshot(usageResponse: Data(body.utf8), now: t0)
        #expect(snapshot.fiveHour == nil)
        #expect(snapshot.weekly?.usedPercent == 55)
    }

    @Test func malformedUsageResponseThrows() {
        #expect(throws: (any Error).self) { try RateLimitSnapshot(usageResponse: Data("<html>".utf8), now: t0) }
        #expect(throws: (any Error).self) { try RateLimitSnapshot(usageResponse: Data(#"{"rate_limit":{"primary_window":{"used_percent":"x"}}}"#.utf8), now: t0) }
    }
}

@Suite(.timeLimit(.minutes(1))) struct RateLimitRejectionTests {
    @Test func exhaustedWindowBlocksUntilItsReset() {
        let rejection = RateLimitRejection(headers: [
            ("x-codex-primary-used-percent", "100"), ("x-codex-primary-window-minutes", "300"), ("x-codex-primary-reset-at", "1800007200"),
            ("x-codex-secondary-used-percent", "60"), ("Retry-After", "30"),
        ], body: nil, now: t0)
        #expect(rejection.limitedUntil(now: t0) == t0 + 2 * hour)
    }

    /// A 429 while both windows are under 100 % is a burst limit: a short cooldown, not hours.
    @Test func windowsUnderHundredMeanAShortCooldown() {
        let headers = [("x-codex-primary-used-percent", "40"), ("x-codex-primary-reset-at", "1800010000")]
        #expect(RateLimitRejection(headers: headers, body: nil, now: t0).limitedUntil(now: t0) == t0 + 60)
        #expect(RateLimitRejection(headers: headers + [("retry-after", "20")], body: nil, now: t0).limitedUntil(now: t0) == t0 + 20)
        #expect(RateLimitRejection(headers: headers + [("retry-after", "86400")], body: nil, now: t0).limitedUntil(now: t0) == t0 + 300)
    }

    @Test func bodyResetsAreUsedWithoutHeaders() {
        let atBody = #"{"error":{"type":"usage_limit_reached","resets_at":1800005400,"resets_in_seconds":999}}"#
        #expect(RateLimitRejection(headers: [], body: Data(atBody.utf8), now: t0).limitedUntil(now: t0) == t0 + 5400)
        let inBody = #"{"error":{"type":"usage_limit_reached","resets_in_seconds":600}}"#
        #expect(RateLimitRejection(headers: [], body: Data(inBody.utf8), now: t0).limitedUntil(now: t0) == t0 + 600)
    }

    @Test func retryAfterOrFallback() {
        #expect(RateLimitRejection(headers: [("Retry-After", "45")], body: nil, now: t0).limitedUntil(now: t0) == t0 + 45)
        #expect(RateLimitRejection(headers: [("Retry-After", "soon")], body: Data("garbage".utf8), now: t0).limitedUntil(now: t0) == t0 + 60)
    }

    @Test func webSocketErrorEvents() throws {
        let event = """
            {"type":"error","status_code":429,"error":{"type":"usage_limit_reached","resets_in_seconds":7200},
             "headers":{"X-Codex-Primary-Used-Percent":"100","x-codex-primary-reset-at":1800003600}}
            """
        let rejection = try #require(RateLimitRejection(errorEvent: Data(event.utf8), now: t0))
        #expect(rejection.snapshot.fiveHour?.usedPercent == 100)
        #expect(rejection.limitedUntil(now: t0) == t0 + hour)
        #expect(RateLimitRejection(errorEvent: Data(#"{"type":"error","status":429}"#.utf8), now: t0) != nil)
        #expect(RateLimitRejection(errorEvent: Data(#"{"type":"error","status_code":400}"#.utf8), now: t0) == nil)
        #expect(RateLimitRejection(errorEvent: Data(#"{"type":"response.completed"}"#.utf8), now: t0) == nil)
    }
}
