import Foundation
@testable import PoolCore
import Testing

/// The pool's named operations: what each does to a credential and what it asks the I/O shell to do.
@Suite(.timeLimit(.minutes(1))) struct CredentialPoolOperationsTests {
    private func pool(_ states: [CredentialState]) -> CredentialPool {
        CredentialPool(credentials: states, balancers: [BalancerDefinition(tag: "pool", members: states.map(\.tag))], randomSeed: 1)
    }

    @Test func aLoadedFileSetsAvailabilityAndPlanAndAnotherAccountForgetsTheOldUsage() {
        var pool = pool([CredentialState(tag: "a", kind: .local, availability: .unavailable(UnavailableReason("not loaded yet")))])
        let loaded = pool.credentialFileLoaded("a", availability: .available, isAPIKey: false, planHint: "pro", accountChanged: false, now: t0)
        #expect(loaded.statusChanged, "the plan weight changed")
        #expect(pool["a"]?.availability == .available)
        #expect(pool["a"]?.usage.planType == "pro")
        _ = pool.recordObserved("a", snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 40, resetAt: t0 + hour)), now: t0)
        #expect(pool["a"]?.usage.usedPercent(.weekly, now: t0) == 40)

        // The same account again: what was learned stays, and the plan hint does not override the known plan.
        _ = pool.credentialFileLoaded("a", availability: .available, isAPIKey: false, planHint: "plus", accountChanged: false, now: t0 + 1)
        #expect(pool["a"]?.usage.usedPercent(.weekly, now: t0 + 1) == 40)
        #expect(pool["a"]?.usage.planType == "pro")
        // Another account in the file: everything learned is forgotten.
        _ = pool.credentialFileLoaded("a", availability: .available, isAPIKey: false, planHint: "plus", accountChanged: true, now: t0 + 2)
        #expect(pool["a"]?.usage.hasData == false)
        #expect(pool["a"]?.usage.planType == "plus")
    }

    @Test func aFileThatStopsLoadingInterruptsTheCredentialsWorkOnce() {
        var pool = pool([credential("a", weekly: 10)])
        let lost = pool.credentialFileLoaded("a", availability: .unavailable(UnavailableReason("file removed")), isAPIKey: false, planHint: nil,
                                             accountChanged: false, now: t0)
        #expect(lost.interruptions == [.credential("a")])
        let again = pool.setAvailability("a", .unavailable(UnavailableReason("still removed")), now: t0 + 1)
        #expect(again.interruptions == [])
        #expect(pool.setAvailability("a", .available, now: t0 + 2).interruptions == [])
        #expect(pool["a"]?.usability(now: t0 + 2).isUsable == true)
    }

    @Test func pollOutcomesDrivePollTimingWithBackOffAndRetryAfter() {
        var pool = pool([credential("a", weekly: 10)])
        #expect(pool["a"]?.usage.nextPollAt(interval: PoolPolicy.usagePollInterval) == t0 + PoolPolicy.usagePollInterval)

        // Failures: unusable, then 1, 2, 4, 5, 5 minutes between polls.
        var now = t0
        for expected in [60.0, 120, 240, 300, 300] {
            let events = pool.usagePollFailed("a", reason: "HTTP 500", now: now)
            #expect(events.statusChanged)
            #expect(pool["a"]?.usage.nextPollAt(interval: PoolPolicy.usagePollInterval) == now + expected)
            #expect(pool["a"]?.usability(now: now).isUsable == false)
            now += expected
        }
        #expect(pool["a"]?.usage.lastPollError == "HTTP 500")

        // An answer ends the back-off and makes the credential usable again.
        let answered = pool.usagePollAnswered("a", snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 20, resetAt: now + hour)), now: now)
        #expect(answered.statusChanged)
        #expect(pool["a"]?.usability(now: now).isUsable == true)
        #expect(pool["a"]?.usage.usedPercent(.weekly, now: now) == 20)
        #expect(pool["a"]?.usage.nextPollAt(interval: PoolPolicy.usagePollInterval) == now + PoolPolicy.usagePollInterval)

        // A usage-API 429 is not a failure: usable, next poll after its Retry-After (or the default).
        _ = pool.usageAPIRateLimited("a", retryAfter: 90, now: now)
        #expect(pool["a"]?.usability(now: now).isUsable == true)
        #expect(pool["a"]?.usage.nextPollAt(interval: PoolPolicy.usagePollInterval) == now + 90)
        _ = pool.usageAPIRateLimited("a", retryAfter: nil, now: now + 1)
        #expect(pool["a"]?.usage.nextPollAt(interval: PoolPolicy.usagePollInterval) == now + 1 + PoolPolicy.usageAPIRetryDefault)
    }

    @Test func aRejectingPeerRestsForTheRejectionPauseUnlessFreshDataArrives() {
        var pool = pool([credential("peer", kind: .externalForward, peerWeight: 1, weekly: 10)])
        let rejected = pool.upstreamRejected("peer", now: t0)
        #expect(rejected.statusChanged)
        #expect(rejected.interruptions == [.credential("peer")])
        #expect(pool["peer"]?.usability(now: t0 + PoolPolicy.upstreamRejectionPause - 1).isUsable == false)
        #expect(pool["peer"]?.usability(now: t0 + PoolPolicy.upstreamRejectionPause).isUsable == true)

        _ = pool.upstreamRejected("peer", now: t0)
        _ = pool.usagePollAnswered("peer", snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 11)), now: t0 + 10)
        #expect(pool["peer"]?.usability(now: t0 + 10).isUsable == true)
    }

    @Test func aRateLimitHoldsUntilItsResetAndCountsInTheAggregate() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 10)])
        let rejection = RateLimitRejection(snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 100, resetAt: t0 + 2 * hour)), retryAfter: nil)
        let events = pool.recordRateLimited("a", rejection: rejection, now: t0)
        #expect(events.statusChanged)
        #expect(events.interruptions == [.credential("a")])
        #expect(pool["a"]?.usability(now: t0 + 2 * hour - 1).isUsable == false)
        #expect(pool["a"]?.usability(now: t0 + 2 * hour).isUsable == true)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: nil, now: t0 + 1).tag == "b")
    }

    @Test func expiredStickySessionsArePurgedAtMostEveryPurgeInterval() {
        var pool = pool([credential("a"), credential("b", weekly: 50)])
        _ = pool.select(provider: "pool", scope: .all, sessionID: "old", now: t0)
        let expired = t0 + SessionTable.lifetime + 1
        // The first selection after expiry purges; the session is gone from the table itself.
        _ = pool.select(provider: "pool", scope: .all, sessionID: "new", now: expired)
        #expect(pool.sessionCounts(now: t0) == ["a": 1])
        // Within the purge interval nothing more is purged, even if something expired meanwhile.
        _ = pool.select(provider: "pool", scope: .all, sessionID: "short", now: expired + 1)
        let later = expired + SessionTable.lifetime + 2
        _ = pool.select(provider: "pool", scope: .all, sessionID: nil, now: expired + PoolPolicy.sessionPurgeInterval - 1)
        #expect(pool.sessionCounts(now: t0 + SessionTable.lifetime + 2) == ["a": 2])
        _ = pool.select(provider: "pool", scope: .all, sessionID: nil, now: later)
        #expect(pool.sessionCounts(now: t0 + SessionTable.lifetime + 2) == [:])
    }
}
