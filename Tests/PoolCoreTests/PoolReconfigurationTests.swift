import Foundation
@testable import PoolCore
import Testing

/// A configuration reload as the pool sees it: what stays known, what leaves, and that nothing
/// is interrupted.
@Suite(.timeLimit(.minutes(1))) struct PoolReconfigurationTests {
    @Test func keptCredentialsKeepWhatWasLearnedAndRemovedOnesTakeNoNewSessions() {
        var pool = CredentialPool(credentials: [credential("a", weekly: 10), credential("b", weekly: 50)],
                                  balancers: [BalancerDefinition(tag: "pool", members: ["a", "b"])], randomSeed: 1)
        _ = pool.setDisabledByAdmin("b", true, now: t0)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "s1", now: t0).tag == "a")

        // a leaves, c arrives (fresh, unknown), b stays with new caps; the balancer follows.
        let fresh = CredentialState(tag: "c", kind: .local)
        let caps = UsageCaps(weekly: .reserve(20))
        let (change, events) = pool.reconfigure(
            credentials: [CredentialState(tag: "b", kind: .local, caps: caps, availability: .unavailable(UnavailableReason("not loaded yet"))), fresh],
            balancers: [BalancerDefinition(tag: "pool", members: ["b", "c"])])
        #expect(change.added == ["c"])
        #expect(change.removed == ["a"])
        #expect(change.changed == ["b", "pool"])
        #expect(events.interruptions.isEmpty, "a reload never cuts open work")
        #expect(events.statusChanged)
        #expect(pool.order == ["b", "c", "pool"])
        #expect(pool["a"] == nil)
        // b keeps its usage, availability and admin switch; only the caps are new.
        #expect(pool["b"]?.usage.usedPercent(.weekly, now: t0) == 50)
        #expect(pool["b"]?.availability == .available)
        #expect(pool["b"]?.disabledByAdmin == true)
        #expect(pool["b"]?.caps == caps)
        // The session that was on a moves at its next request; b is disabled, so c takes it.
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "s1", now: t0 + 1).tag == "c")
        // a's last reports are ignored.
        #expect(pool.recordObserved("a", snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: 99)), now: t0 + 2).interruptions.isEmpty)
        #expect(pool["a"] == nil)
    }

    @Test func aReplacedOrRetypedCredentialStartsAfreshAndBalancersComeAndGo() {
        var pool = CredentialPool(credentials: [credential("a", weekly: 10), credential("peer", kind: .externalForward, peerWeight: 5, weekly: 30)],
                                  balancers: [BalancerDefinition(tag: "pool", members: ["a"]), BalancerDefinition(tag: "old", members: ["a"])],
                                  randomSeed: 1)
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "kept", now: t0).tag == "a")
        let (change, _) = pool.reconfigure(
            credentials: [CredentialState(tag: "a", kind: .local), CredentialState(tag: "peer", kind: .externalReceiver)],
            balancers: [BalancerDefinition(tag: "pool", members: ["a"]), BalancerDefinition(tag: "new", members: ["a", "peer"])],
            replaced: ["a"])
        #expect(change.added == ["new"])
        #expect(change.removed == ["old"])
        #expect(change.changed == ["a", "peer"])
        #expect(pool["a"]?.usage.hasData == false, "another file under the same tag is another account")
        #expect(pool["peer"]?.kind == .externalReceiver)
        #expect(!pool.isBalancer("old"))
        #expect(pool.isBalancer("new"))
        // The unchanged balancer kept its sticky sessions.
        #expect(pool.select(provider: "pool", scope: .all, sessionID: "kept", now: t0 + 1).map(\.isNewSession) == .success(false))
    }
}
