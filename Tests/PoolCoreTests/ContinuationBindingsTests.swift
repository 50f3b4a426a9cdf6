import Foundation
@testable import PoolCore
import Testing

/// Continuation state stays with the credential that issued it (codex-wire-2026.md §1).
@Suite(.timeLimit(.minutes(1))) struct ContinuationBindingsTests {
    func pool(_ credentials: [CredentialState]) -> CredentialPool {
        CredentialPool(credentials: credentials,
                       balancers: [BalancerDefinition(tag: "pool", members: credentials.map(\.tag), strategy: .leastUsed, rebalanceThreshold: 20)],
                       randomSeed: 7)
    }

    @Test func bindingsNameTheIssuerAndExpireAfterADayUnused() {
        var bindings = ContinuationBindings()
        bindings.bind(.turnState, "ts-1", to: "a", now: t0)
        bindings.bind(.responseID, "ts-1", to: "b", now: t0)
        #expect(bindings.credential(for: .turnState, "ts-1", now: t0 + 3600) == "a")
        #expect(bindings.credential(for: .responseID, "ts-1", now: t0) == "b", "kinds do not mix")
        #expect(bindings.credential(for: .turnState, "ts-1", now: t0 + 3600 + ContinuationBindings.lifetime - 1) == "a", "use refreshes it")
        #expect(bindings.credential(for: .turnState, "ts-1", now: t0 + 3600 + 2 * ContinuationBindings.lifetime) == nil)
        bindings.bind(.turnState, "", to: "a", now: t0)
        #expect(bindings.count == 1, "empty values are not state")
    }

    @Test func memoryIsBoundedLeastRecentlyUsedFirst() {
        var bindings = ContinuationBindings(capacity: 100)
        for index in 0..<100 { bindings.bind(.responseID, "r\(index)", to: "a", now: t0 + Double(index)) }
        _ = bindings.credential(for: .responseID, "r0", now: t0 + 200)
        bindings.bind(.responseID, "r100", to: "a", now: t0 + 201)
        #expect(bindings.count <= 100)
        #expect(bindings.credential(for: .responseID, "r0", now: t0 + 202) == "a", "recently used survives")
        #expect(bindings.credential(for: .responseID, "r1", now: t0 + 202) == nil, "the oldest went")
    }

    @Test func fingerprintsTellLongValuesApart() {
        let one = ContinuationBindings.fingerprint(of: Array("gAAAA-one".utf8))
        #expect(one == ContinuationBindings.fingerprint(of: Array("gAAAA-one".utf8)))
        #expect(one != ContinuationBindings.fingerprint(of: Array("gAAAA-two".utf8)))
    }

    @Test func aTurnContinuesOnItsCredentialWhileItCanServe() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 20)])
        pool.bindContinuations([(.turnState, "ts-a")], to: "a", now: t0)
        let bound = pool.continuationCredential(.turnState, "ts-a", now: t0)
        #expect(bound == "a")
        #expect(pool.continuationTarget(boundTag: bound, provider: "pool", scope: .all, now: t0) == .continueOn("a"))
        #expect(pool.continuationTarget(boundTag: nil, provider: "pool", scope: .all, now: t0) == .unbound)
        #expect(pool.continuationTarget(boundTag: "elsewhere", provider: "pool", scope: .all, now: t0) == .lost("elsewhere"))
        _ = pool.recordRateLimited("a", rejection: RateLimitRejection(retryAfter: 600), now: t0)
        #expect(pool.continuationTarget(boundTag: "a", provider: "pool", scope: .all, now: t0) == .lost("a"))
        #expect(pool.hasUsableCredential(provider: "pool", scope: .all, otherThan: "a", now: t0))
        #expect(!pool.hasUsableCredential(provider: "pool", scope: .all, otherThan: "b", now: t0))
    }

    /// A session told to reconnect to its turn's credential stays there for that one selection,
    /// then rebalancing applies again.
    @Test func aHoldServesOneSelection() {
        var pool = pool([credential("a", weekly: 10), credential("b", weekly: 25)])
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0).tag == "a")
        pool.update("a", now: t0) { $0.usage.applyPoll(RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 60)), now: t0) }
        pool.holdSession(provider: "pool", scope: .all, sessionID: "S", on: "a", now: t0)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0 + 1).tag == "a", "held for the reconnect")
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "S", now: t0 + 2).tag == "b", "then rebalanced")
        pool.holdSession(provider: "pool", scope: .all, sessionID: "T", on: "a", now: t0)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "T", now: t0 + PoolPolicy.turnHold + 1).tag == "b", "a stale hold is ignored")
    }
}
