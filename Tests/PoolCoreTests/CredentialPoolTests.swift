import Foundation
@testable import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct CredentialPoolTests {
    func pool(_ credentials: [CredentialState], strategy: BalancerStrategy = .leastUsed, threshold: Double = 0) -> CredentialPool {
        CredentialPool(
            credentials: credentials,
            balancers: [BalancerDefinition(tag: "pool", members: credentials.map(\.tag), strategy: strategy, rebalanceThreshold: threshold)],
            randomSeed: 7)
    }

    /// Scenario 16: the same session stays put even when another credential becomes less used.
    @Test("Scenario 16: the same session stays put even when another credential becomes less used") func sessionsAreSticky() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 20)])
        let first = pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0)
        #expect(first.tag == "a")
        #expect((try? first.get())?.isNewSession == true)
        pool.update("b", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 0)), now: t0) }
        pool.update("a", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 60)), now: t0) }
        let again = pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0 + 60)
        #expect(again.tag == "a")
        #expect((try? again.get())?.isNewSession == false)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: nil, now: t0 + 60).tag == "b", "no session id: re-picked each time")
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "other", now: t0 + 60).tag == "b")
    }

    /// A sticky credential that becomes unusable loses its sessions to the next best one.
    @Test func unusableStickyCredentialIsReplaced() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 20)])
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "a")
        pool.update("a", now: t0) { $0.availability = .unavailable(UnavailableReason("credential file removed")) }
        let moved = pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0)
        #expect(moved.tag == "b")
        #expect((try? moved.get())?.isNewSession == true)
    }

    /// Scenario 14: a 429 on a marks it limited until the reported reset and moves the session to b.
    @Test("Scenario 14: a 429 on a marks it limited until the reported reset and moves the session to b") func failoverOnRateLimit() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 20)])
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "a")
        let rejection = RateLimitRejection(headers: [
            ("x-codex-active-limit", "codex"), ("x-codex-primary-used-percent", "100"), ("x-codex-primary-reset-at", "1800007200"),
        ], body: nil, now: t0)
        let (events, next) = pool.failover(provider: "pool", scope: .all, sessionID: "S", failedTag: "a", rejection: rejection, now: t0)
        #expect(next.tag == "b")
        #expect(events.interruptions == [.credential("a")])
        #expect(pool["a"]?.usability(now: t0 + 2 * hour - 1) == .unusable(.rateLimited(until: t0 + 2 * hour)))
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0 + 60).tag == "b", "the session now lives on b")
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "T", now: t0 + 2 * hour).tag == "a", "a is back after its reset")
    }

    @Test func singleCredentialProviderHasNoFailover() {
        var pool = pool([credential("a")])
        let (_, next) = pool.failover(provider: "a", scope: .all, sessionID: "S", failedTag: "a",
                                      rejection: RateLimitRejection(retryAfter: 30), now: t0)
        let failure = next.failure
        #expect(failure?.skipped.map(\.tag) == ["a"])
        #expect(failure?.isRateLimitOnly == true)
        #expect(failure?.summary == "all credentials rate-limited, earliest reset in 30s")
    }

    /// Scenario 18: threshold 20 on Plus (weight 1) needs a gap over 20 points; on Pro over 2.
    @Test("Scenario 18: threshold 20 on Plus (weight 1) needs a gap over 20 points; on Pro over 2") func rebalancingMovesHotSessions() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 25)], threshold: 20)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S1", now: t0).tag == "a")
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S2", now: t0).tag == "a")
        pool.update("a", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 45)), now: t0) }
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S1", now: t0).tag == "a", "gap 20 is not over 20")
        pool.update("a", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 50)), now: t0) }
        let moved = pool.select(provider: "pool", scope: .all, sessionID: "S1", now: t0)
        #expect(moved.tag == "b")
        let selection = try? moved.get()
        #expect(selection?.isNewSession == true)
        #expect(selection?.events.interruptions == [.rebalance(balancer: "pool", credential: "a", scope: .all)])
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S2", now: t0).tag == "b", "other sessions on a were dropped too")
    }

    @Test func rebalancingThresholdIsDividedByPlanWeight() {
        var pool = pool([credential("a", plan: "pro", weekly: 50), credential("b", plan: "pro", weekly: 52)], threshold: 20)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "a")
        pool.update("a", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 53.5)), now: t0) }
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "a", "gap 1.5 is under 20 / 10 = 2")
        pool.update("a", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 55)), now: t0) }
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "b", "gap 3 is over 2")
    }

    /// Scenario 19: sessions and rebalancing never cross selection scopes.
    @Test("Scenario 19: sessions and rebalancing never cross selection scopes") func scopesAreIsolated() {
        var pool = pool([credential("home", kind: .externalReceiver, peerWeight: 10, weekly: 0), credential("a", weekly: 30)], threshold: 5)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "home")
        #expect(pool.select(provider: "pool", scope: .nonExternal, sessionID: "S", now: t0).tag == "a",
                "a user without allow_external_usage neither gets the external credential nor inherits the session")
    }

    /// Scenario 20 (run-time part): API-key credentials are never balanced.
    @Test("Scenario 20 (run-time part): API-key credentials are never balanced") func apiKeyCredentialsAreNeverPicked() {
        var key = credential("key", weekly: 0)
        key.isAPIKey = true
        var pool = pool([key, credential("a", weekly: 90)])
        #expect(pool.select(provider: "pool", scope: .all, sessionID: nil, now: t0).tag == "a")
        #expect(pool.select(provider: "key", scope: .all, sessionID: nil, now: t0).tag == "key", "but serve a user that names them directly")
    }

    @Test func fallbackTakesTheFirstUsableInOrderAndNeverSticks() {
        var pool = pool([credential("a", weekly: 95), credential("b", weekly: 0)], strategy: .fallback)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "a")
        pool.update("a", now: t0) { $0.usage.recordRateLimited(RateLimitRejection(retryAfter: 60), monotonic: true, now: t0) }
        let second = pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0 + 1)
        #expect(second.tag == "b")
        #expect((try? second.get())?.isNewSession == false, "the session was seen before")
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0 + 61).tag == "a", "back to the first once usable")
    }

    @Test func roundRobinCyclesAndSkipsUnusable() {
        var pool = pool([credential("a"), credential("b"), credential("c")], strategy: .roundRobin)
        let picks = (0..<6).compactMap { _ in pool.select(provider: "pool", scope: .all, sessionID: nil, now: t0).tag }
        #expect(picks == ["a", "b", "c", "a", "b", "c"])
        pool.update("b", now: t0) { $0.availability = .unavailable(UnavailableReason("gone")) }
        let skipping = (0..<4).compactMap { _ in pool.select(provider: "pool", scope: .all, sessionID: nil, now: t0).tag }
        #expect(skipping == ["a", "c", "a", "c"])
    }

    @Test func randomIsReproducibleFromItsSeedAndCoversEveryone() {
        var first = pool([credential("a"), credential("b"), credential("c")], strategy: .random)
        var second = pool([credential("a"), credential("b"), credential("c")], strategy: .random)
        let picksA = (0..<60).compactMap { _ in first.select(provider: "pool", scope: .all, sessionID: nil, now: t0).tag }
        let picksB = (0..<60).compactMap { _ in second.select(provider: "pool", scope: .all, sessionID: nil, now: t0).tag }
        #expect(picksA == picksB)
        #expect(Set(picksA) == ["a", "b", "c"])
    }

    /// Every candidate and its reason appear in the failure.
    @Test func selectionFailureExplainsEveryCandidate() {
        var offline = credential("home", kind: .externalReceiver)
        offline.availability = .unavailable(UnavailableReason("connector offline", since: t0 - hour))
        var limited = credential("a", weekly: 10)
        limited.usage.recordRateLimited(RateLimitRejection(retryAfter: 3 * hour), monotonic: true, now: t0)
        let capped = credential("b", weekly: 99.5, weeklyResetIn: 26 * hour)
        var pool = pool([offline, limited, capped])
        let failure = pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).failure
        #expect(failure?.isRateLimitOnly == false)
        #expect(failure?.explanation == "all credentials unavailable (home: connector offline since 2027-01-15 07:00:00 UTC; "
            + "a: rate-limited until 2027-01-15 11:00:00 UTC (in 3h0m); b: weekly use 99.5 % reached its cap of 99 %, resets in 1d2h)")
        let nonExternal = pool.select(provider: "pool", scope: .nonExternal, sessionID: "S", now: t0).failure
        #expect(nonExternal?.isRateLimitOnly == true, "an excluded external does not make it 'unavailable'")
        #expect(nonExternal?.summary == "all credentials rate-limited, earliest reset in 3h0m")
        #expect(nonExternal?.retryAfterSeconds == 3 * 3600)
        #expect(nonExternal?.skipped.first?.reason == .externalNotAllowed)
    }

    /// Interruptions fire once, on the usable → unusable transition.
    @Test func interruptionFiresOncePerTransition() {
        var pool = pool([credential("a", weekly: 10)])
        let capped = RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 99.5))
        #expect(pool.recordObserved("a", snapshot: capped, now: t0).interruptions == [.credential("a")])
        #expect(pool.recordObserved("a", snapshot: capped, now: t0 + 1).interruptions == [])
        let events = pool.update("a", now: t0 + 2) { $0.availability = .unavailable(UnavailableReason("file removed")) }
        #expect(events.interruptions == [], "already unusable")
    }

    @Test func statusChangesOnlyWhenAnAggregateInputChanges() {
        var pool = pool([credential("a", weekly: 10, weeklyResetIn: 10 * hour)])
        #expect(pool.recordObserved("a", snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 10)), now: t0).statusChanged == false)
        #expect(pool.recordObserved("a", snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 12)), now: t0).statusChanged == true)
        #expect(pool.update("a", now: t0) { $0.usage.recordPollFailure("x", now: t0) }.statusChanged == false)
    }

    @Test func sessionCountsAndPurge() {
        var pool = pool([credential("a"), credential("b", weekly: 50)])
        for id in ["s1", "s2", "s3"] { _ = pool.select(provider: "pool", scope: .all, sessionID: id, now: t0) }
        #expect(pool.sessionCounts(now: t0) == ["a": 3])
        // Expired sessions leave the table at the next selection (not only out of the counts).
        _ = pool.select(provider: "pool", scope: .all, sessionID: "s4", now: t0 + 25 * hour)
        #expect(pool.sessionCounts(now: t0) == ["a": 1])
    }
}
