import Foundation
@testable import PoolCore
import Testing

/// Limit families besides Codex's own (codex-wire-2026.md §4) are read from every source and
/// aggregated per family.
@Suite(.timeLimit(.minutes(1))) struct AdditionalRateLimitTests {
    /// Ids as sources spell them become one form; ones already in it come back as they are.
    @Test func limitIDsAreNormalized() {
        let cases: [(String?, String)] = [
            (nil, "codex"), ("", "codex"), ("   ", "codex"), ("codex", "codex"), ("codex-bengalfox", "codex-bengalfox"), ("gpt-5", "gpt-5"),
            ("codex_bengalfox", "codex-bengalfox"), (" Codex_Bengalfox ", "codex-bengalfox"), ("CODEX", "codex"), ("codex bengalfox", "codex bengalfox"),
        ]
        for (raw, normalized) in cases {
            #expect(RateLimitSnapshot.normalizedLimitID(raw) == normalized, "\(String(describing: raw))")
        }
    }

    @Test func headersCarryEveryOtherFamily() {
        let snapshot = RateLimitSnapshot(headers: [
            ("x-codex-primary-used-percent", "10"), ("x-codex-primary-window-minutes", "300"),
            ("X-Codex-Bengalfox-Primary-Used-Percent", "40"), ("x-codex-bengalfox-primary-window-minutes", "300"),
            ("x-codex-bengalfox-primary-reset-at", "1900000000"), ("x-codex-bengalfox-limit-name", "gpt-5.2-codex-sonic"),
            ("x-codex-bengalfox-secondary-used-percent", "7"), ("x-codex-bengalfox-secondary-window-minutes", "10080"),
        ])
        #expect(snapshot.fiveHour?.usedPercent == 10)
        #expect(snapshot.additional.count == 1)
        let family = snapshot.additional[0]
        #expect(family.id == "codex-bengalfox")
        #expect(family.name == "gpt-5.2-codex-sonic")
        #expect(family.windows.fiveHour?.usedPercent == 40)
        #expect(family.windows.fiveHour?.resetAt == Date(timeIntervalSince1970: 1_900_000_000))
        #expect(family.windows.weekly?.usedPercent == 7)
        #expect(RateLimitSnapshot(headers: [("x-codex-primary-used-percent", "10")]).additional.isEmpty)
    }

    @Test func eventsAndUsageAnswersToo() throws {
        let event = #"{"type":"codex.rate_limits","metered_limit_name":"codex_bengalfox","limit_name":"gpt-5.2-codex-sonic","rate_limits":{"primary":{"used_percent":25,"window_minutes":300,"reset_after_seconds":60}}}"#
        let fromEvent = try #require(RateLimitSnapshot(rateLimitsEvent: Data(event.utf8), now: t0))
        #expect(!fromEvent.hasUsageData, "not Codex's own windows")
        #expect(fromEvent.additional.first?.id == "codex-bengalfox")
        #expect(fromEvent.additional.first?.windows.fiveHour?.usedPercent == 25)
        #expect(fromEvent.additional.first?.windows.fiveHour?.resetAt == t0 + 60)

        let usage = #"{"plan_type":"pro","rate_limit":{"primary_window":{"used_percent":5,"limit_window_seconds":18000}},"additional_rate_limits":[{"limit_name":"gpt-5.2-codex-sonic","metered_feature":"codex_bengalfox","rate_limit":{"primary_window":{"used_percent":60,"limit_window_seconds":18000,"reset_at":1900000000},"secondary_window":null}}]}"#
        let fromUsage = try RateLimitSnapshot(usageResponse: Data(usage.utf8), now: t0)
        #expect(fromUsage.fiveHour?.usedPercent == 5)
        #expect(fromUsage.additional.map(\.id) == ["codex-bengalfox"])
        #expect(fromUsage.additional.first?.windows.fiveHour?.usedPercent == 60)
    }

    @Test func thePoolAggregatesEachFamilyByPlanWeightOverTheAccountsReportingIt() {
        var pool = CredentialPool(credentials: [credential("pro", plan: "pro", weekly: 10), credential("plus", plan: "plus", weekly: 10),
                                                credential("none", plan: "plus", weekly: 10)],
                                  balancers: [BalancerDefinition(tag: "pool", members: ["pro", "plus", "none"])], randomSeed: 1)
        func family(_ used: Double, reset: TimeInterval) -> RateLimitSnapshot {
            var snapshot = RateLimitSnapshot()
            snapshot.additional = [AdditionalRateLimit(id: "codex-bengalfox", name: "sonic", windows: RateLimitSnapshot(
                fiveHour: RateLimitWindow(usedPercent: used, resetAt: t0 + reset, windowMinutes: 300)))]
            return snapshot
        }
        _ = pool.recordObserved("pro", snapshot: family(10, reset: 600), now: t0)
        _ = pool.recordObserved("plus", snapshot: family(65, reset: 300), now: t0)
        let limits = pool.additionalLimits(provider: "pool", viewer: .everyone)
        #expect(limits.count == 1)
        let window = limits.first?.windows.fiveHour
        // (10·10 + 65·1) / 11 = 15; the account that reports no such limit is left out.
        #expect(abs((window?.usedPercent ?? 0) - 15) < 0.001)
        #expect(window?.resetAt == t0 + 300, "the earliest reset")
        #expect(limits.first?.name == "sonic")
        #expect(pool["pro"]?.usage.fiveHour.usedPercent == 0, "Codex's own windows untouched")
    }
}
