import Foundation
@testable import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct CredentialUsageStateTests {
    func window(_ used: Double, resetIn: TimeInterval?) -> RateLimitSnapshot {
        RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: used, resetAt: resetIn.map { t0 + $0 }, windowMinutes: 10080))
    }

    /// Scenario 11: within one window utilization never decreases; a later reset starts a new window.
    @Test("Scenario 11: within one window utilization never decreases; a later reset starts a new window") func monotonicHeadersWithinAWindow() {
        var state = CredentialUsageState()
        state.applyPoll(window(40, resetIn: 100 * hour), now: t0)
        state.applyObserved(window(35, resetIn: 100 * hour), monotonic: true, now: t0 + 1)
        #expect(state.usedPercent(.weekly, now: t0 + 1) == 40)
        state.applyObserved(window(45, resetIn: 100 * hour), monotonic: true, now: t0 + 2)
        #expect(state.usedPercent(.weekly, now: t0 + 2) == 45)
        state.applyObserved(window(5, resetIn: 100 * hour + 7 * 24 * hour), monotonic: true, now: t0 + 3)
        #expect(state.usedPercent(.weekly, now: t0 + 3) == 5)
        #expect(state.resetAt(.weekly, now: t0 + 3) == t0 + 100 * hour + 7 * 24 * hour)
    }

    @Test func externalCredentialsTakeHeadersAsTheyCome() {
        var state = CredentialUsageState()
        state.applyPoll(window(40, resetIn: hour), now: t0)
        state.applyObserved(window(35, resetIn: hour), monotonic: false, now: t0 + 1)
        #expect(state.usedPercent(.weekly, now: t0 + 1) == 35)
    }

    /// Expired resets drop out: the window rolled over, so its old use no longer counts.
    @Test func passedResetMeansAFreshWindow() {
        var state = CredentialUsageState()
        state.applyPoll(window(90, resetIn: hour), now: t0)
        #expect(state.usedPercent(.weekly, now: t0 + hour - 1) == 90)
        #expect(state.usedPercent(.weekly, now: t0 + hour) == 0)
        #expect(state.resetAt(.weekly, now: t0 + hour) == nil)
        state.applyObserved(window(3, resetIn: nil), monotonic: true, now: t0 + 2 * hour)
        #expect(state.usedPercent(.weekly, now: t0 + 2 * hour) == 3, "a lower value is accepted once the stored window expired")
    }

    /// Scenario 12: a response without rate-limit data does not count as fresh data.
    @Test("Scenario 12: a response without rate-limit data does not count as fresh data") func passiveUpdateWithoutDataKeepsThePollDue() {
        var state = CredentialUsageState()
        state.applyPoll(window(10, resetIn: 10 * hour), now: t0)
        let changed = state.applyObserved(RateLimitSnapshot(headers: [("content-type", "text/event-stream")]), monotonic: true, now: t0 + 2 * hour)
        #expect(!changed)
        #expect(state.lastUpdated == t0)
        #expect(state.nextPollAt(interval: hour) == t0 + hour)
    }

    /// Scenario 10: failures back off 1, 2, 4, 5, 5 minutes; a success clears them.
    @Test("Scenario 10: failures back off 1, 2, 4, 5, 5 minutes; a success clears them") func pollFailureBackoff() {
        var state = CredentialUsageState()
        var delays: [TimeInterval] = []
        var now = t0
        for _ in 1...5 {
            state.recordPollFailure("HTTP 500", now: now)
            let next = state.nextPollAt(interval: hour)
            delays.append(next.timeIntervalSince(now))
            now = next
        }
        #expect(delays == [60, 120, 240, 300, 300])
        #expect(state.consecutivePollFailures == 5)
        state.applyPoll(window(1, resetIn: hour), now: now)
        #expect(state.consecutivePollFailures == 0)
        #expect(state.nextPollAt(interval: hour) == now + hour)
    }

    /// Scenario 9: a usage-API 429 is not a failure; the next poll waits for its Retry-After.
    @Test("Scenario 9: a usage-API 429 is not a failure; the next poll waits for its Retry-After") func usageAPIRateLimitDelaysThePoll() {
        var state = CredentialUsageState()
        state.applyPoll(window(1, resetIn: hour), now: t0)
        state.recordUsageAPIRateLimited(retryAfter: 30, now: t0 + hour)
        #expect(state.consecutivePollFailures == 0)
        #expect(state.nextPollAt(interval: hour) == t0 + hour + 30)
        state.recordUsageAPIRateLimited(retryAfter: nil, now: t0 + 2 * hour)
        #expect(state.nextPollAt(interval: hour) == t0 + 2 * hour + 60)
    }

    @Test func neverUpdatedCredentialIsDueAtOnce() {
        #expect(CredentialUsageState().nextPollAt(interval: hour) == .distantPast)
        #expect(!CredentialUsageState().hasData)
    }
}

@Suite(.timeLimit(.minutes(1))) struct CredentialStateTests {
    /// 429 → limited → the reset passes → usable again.
    @Test func rateLimitLifecycle() {
        var state = credential("a", weekly: 10, weeklyResetIn: 100 * hour)
        #expect(state.usability(now: t0) == .usable)
        let until = state.usage.recordRateLimited(RateLimitRejection(retryAfter: 120), monotonic: true, now: t0)
        #expect(until == t0 + 120)
        #expect(state.usability(now: t0 + 119) == .unusable(.rateLimited(until: t0 + 120)))
        #expect(state.usability(now: t0 + 120) == .usable)
    }

    /// Scenario 13: a weekly limit of 80 makes 80 % unusable and 79.9 % usable.
    @Test("Scenario 13: a weekly limit of 80 makes 80 % unusable and 79.9 % usable") func capsDecideUsability() {
        let caps = UsageCaps(weekly: .limit(80))
        #expect(credential("a", weekly: 79.9, caps: caps).usability(now: t0) == .usable)
        let capped = credential("a", weekly: 80, weeklyResetIn: 2 * hour, caps: caps)
        #expect(capped.usability(now: t0) == .unusable(.capReached(.weekly, usedPercent: 80, capPercent: 80, resetAt: t0 + 2 * hour)))
        #expect(credential("a", fiveHour: 99).usability(now: t0) != .usable, "default cap is 99 %")
        #expect(credential("e", kind: .externalReceiver, fiveHour: 99.5).usability(now: t0) == .usable, "external caps are 100 %")
    }

    @Test func unavailableAndFailingCredentialsAreUnusable() {
        var state = credential("a")
        state.availability = .unavailable(UnavailableReason("connector offline", since: t0))
        #expect(state.usability(now: t0) == .unusable(.unavailable(UnavailableReason("connector offline", since: t0))))
        var failing = credential("b")
        failing.usage.recordPollFailure("HTTP 500", now: t0)
        #expect(failing.usability(now: t0) == .unusable(.usagePollFailing(failures: 1, lastError: "HTTP 500")))
        var rejected = credential("c", kind: .externalForward)
        rejected.usage.recordUpstreamRejected(now: t0)
        #expect(rejected.usability(now: t0 + 3599) == .unusable(.upstreamRejected(until: t0 + 3600)))
        rejected.usage.applyObserved(RateLimitSnapshot(fiveHour: RateLimitWindow(usedPercent: 1)), monotonic: false, now: t0 + 60)
        #expect(rejected.usability(now: t0 + 60) == .usable, "fresh data clears the rejection early")
    }

    @Test func planWeights() {
        #expect(credential("a", plan: "pro").planWeight == 10)
        #expect(credential("a", plan: "prolite").planWeight == 5)
        #expect(credential("a", plan: "plus").planWeight == 1)
        #expect(credential("a", plan: nil).planWeight == 1)
        #expect(credential("e", kind: .externalReceiver).planWeight == 10, "peers count as 10 until they report")
        #expect(credential("e", kind: .externalReceiver, peerWeight: 11).planWeight == 11)
        for plan in ["free", "team", "business", "enterprise", "edu"] {
            #expect(PlanWeight.resolve(plan) == (1, true), "\(plan)")
        }
        #expect(PlanWeight.resolve("galaxy") == (1, false))
    }
}
