import NIOHTTP1
import Testing
import UpstreamSimulator

@Suite(.timeLimit(.minutes(1))) struct SimulatedRateLimitsTests {
    @Test func rendersBothWindowsAsCodexHeaders() {
        let limits = SimulatedRateLimits(
            planType: "plus",
            fiveHour: .init(usedPercent: 12.5, windowMinutes: 300, resetAt: 1_000_3600),
            weekly: .init(usedPercent: 40, windowMinutes: 10080, resetAt: 1_086_400))
        let headers = limits.headers(now: 1_000_000)
        #expect(headers["x-codex-primary-used-percent"] == ["12.5"])
        #expect(headers["x-codex-primary-window-minutes"] == ["300"])
        #expect(headers["x-codex-secondary-used-percent"] == ["40"])
        #expect(headers["x-codex-secondary-reset-at"] == ["1086400"])
        #expect(headers["x-codex-secondary-reset-after-seconds"] == ["86400"])
        #expect(!limits.limitReached)
    }

    @Test func weeklyOnlyPlansReportTheWeekAsPrimary() {
        let limits = SimulatedRateLimits(planType: "free", fiveHour: nil, weekly: .init(usedPercent: 100, windowMinutes: 10080, resetAt: 5))
        let headers = limits.headers(now: 0)
        #expect(headers["x-codex-primary-window-minutes"] == ["10080"])
        #expect(headers["x-codex-secondary-used-percent"].isEmpty)
        #expect(limits.limitReached)
    }
}
