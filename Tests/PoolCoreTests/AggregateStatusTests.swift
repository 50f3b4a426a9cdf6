import Foundation
@testable import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct AggregateStatusTests {
    /// Scenario 23: a (plus, 5 h 49 %) + b (pro, 5 h 9 %), caps 99 → 100 − (50·1 + 90·10)/11.
    @Test("Scenario 23: a (plus, 5 h 49 %) + b (pro, 5 h 9 %), caps 99 → 100 − (50·1 + 90·10)/11") func weightedUtilizationByHand() {
        let status = AggregateStatus.compute(
            [credential("a", plan: "plus", fiveHour: 49, weekly: 0), credential("b", plan: "pro", fiveHour: 9, weekly: 0)], now: t0)
        #expect(abs(status.fiveHourUtilization - (100 - 950.0 / 11)) < 1e-9)   // 13.6363…
        #expect(status.planWeight == 11)
        #expect(status.weeklyUtilization == 1, "a fresh credential (cap 99, use 0) reports 1 %")
    }

    @Test func cappedCredentialsReportFullAndCapsAreTheirHundred() {
        let status = AggregateStatus.compute([credential("a", weekly: 85, caps: UsageCaps(weekly: .limit(80)))], now: t0)
        #expect(status.weeklyUtilization == 100)
        let half = AggregateStatus.compute([credential("a", weekly: 40, caps: UsageCaps(weekly: .limit(80)))], now: t0)
        #expect(half.weeklyUtilization == 60, "80 − 40 = 40 remaining of a 100 scale")
    }

    /// Resets: the weight-averaged time until each future reset; past resets are skipped.
    @Test func resetIsTheWeightedMeanOfFutureResets() {
        let status = AggregateStatus.compute([
            credential("a", plan: "plus", weekly: 10, weeklyResetIn: 11 * hour),
            credential("b", plan: "pro", weekly: 10, weeklyResetIn: 22 * hour),
            credential("c", plan: "pro", weekly: 10),
        ], now: t0)
        #expect(status.weeklyReset == t0 + (11 * hour * 1 + 22 * hour * 10) / 11)   // 21 h
        #expect(status.fiveHourReset == nil)
        let later = AggregateStatus.compute([
            credential("a", plan: "plus", weekly: 10, weeklyResetIn: 1 * hour),
            credential("b", plan: "plus", weekly: 10, weeklyResetIn: 5 * hour),
        ], now: t0 + 2 * hour)
        #expect(later.weeklyReset == t0 + 5 * hour, "a's reset has passed and is left out")
    }

    @Test func credentialsWithoutDataAreLeftOutAndNothingKnownIsFull() {
        let empty = CredentialState(tag: "new", kind: .local)
        #expect(AggregateStatus.compute([empty], now: t0) == .unknown)
        #expect(AggregateStatus.compute([], now: t0) == .unknown)
        let status = AggregateStatus.compute([empty, credential("a", plan: "pro", weekly: 49)], now: t0)
        #expect(status.planWeight == 10)
        #expect(status.weeklyUtilization == 50)
    }

    @Test func rateLimitedCredentialsStillCountAtTheirUse() {
        var limited = credential("a", weekly: 30)
        limited.usage.recordRateLimited(RateLimitRejection(retryAfter: 60), monotonic: true, now: t0)
        #expect(AggregateStatus.compute([limited], now: t0).weeklyUtilization == 31)
    }

    @Test func viewerExclusions() {
        let pool = CredentialPool(
            credentials: [credential("a", plan: "plus", weekly: 49), credential("peer", kind: .externalReceiver, peerWeight: 9, weekly: 0),
                          credential("self", kind: .externalReceiver, peerWeight: 100, weekly: 0)],
            balancers: [BalancerDefinition(tag: "pool", members: ["a", "peer", "self"])])
        #expect(pool.aggregateStatus(provider: "pool", viewer: StatusViewer(allowExternalUsage: false), now: t0).planWeight == 1)
        let peerView = pool.aggregateStatus(provider: "pool", viewer: StatusViewer(ownInstanceTag: "self", allowExternalUsage: true), now: t0)
        #expect(peerView.planWeight == 10)
        let expected: Double = 100 - (50.0 * 1 + 100.0 * 9) / 10
        #expect(peerView.weeklyUtilization == expected)
        #expect(pool.aggregateStatus(provider: "pool", viewer: .everyone, now: t0).planWeight == 110)
        #expect(pool.aggregateStatus(provider: "a", viewer: .everyone, now: t0).planWeight == 1)
    }

    @Test func statusJSONRoundTrips() throws {
        let status = AggregateStatus(fiveHourUtilization: 13.5, fiveHourReset: t0, weeklyUtilization: 40, weeklyReset: nil, planWeight: 11)
        #expect(status.json == #"{"five_hour_utilization":13.5,"five_hour_reset":1800000000,"weekly_utilization":40,"weekly_reset":0,"plan_weight":11}"#)
        #expect(try AggregateStatus(statusJSON: Data(status.json.utf8)) == status)
    }

    /// Scenario 25: a peer status missing a field is invalid.
    @Test("Scenario 25: a peer status missing a field is invalid") func statusJSONNeedsAllFiveFields() {
        #expect(throws: StatusDecodingError.self) {
            try AggregateStatus(statusJSON: Data(#"{"five_hour_utilization":1,"five_hour_reset":0,"weekly_utilization":1,"plan_weight":1}"#.utf8))
        }
        #expect(throws: StatusDecodingError.self) { try AggregateStatus(statusJSON: Data("[]".utf8)) }
    }
}
