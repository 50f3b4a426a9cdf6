import Foundation
import PoolCore
import Testing

/// Many sessions over hours of virtual time: usage grows with traffic, the balancer places and
/// rebalances sessions, and the invariants hold throughout.
@Suite(.timeLimit(.minutes(1))) struct PoolSimulationTests {
    @Test func sessionsMoveOnlyWhenInterruptedAndLoadFollowsPlanWeight() {
        var pool = CredentialPool(
            credentials: [credential("plus-a", plan: "plus", weekly: 20, weeklyResetIn: 100 * hour),
                          credential("plus-b", plan: "plus", weekly: 35, weeklyResetIn: 30 * hour),
                          credential("pro", plan: "pro", weekly: 60, weeklyResetIn: 120 * hour)],
            balancers: [BalancerDefinition(tag: "pool", members: ["plus-a", "plus-b", "pro"], rebalanceThreshold: 10)],
            randomSeed: 1)
        var placement: [String: String] = [:]
        var newSessionsPerCredential: [String: Int] = [:]
        var interruptions = 0
        var now = t0
        // Each request uses 0.05 % of a Plus week, or a tenth of that on Pro.
        func charge(_ tag: String) {
            let used = pool[tag]!.usage.usedPercent(.weekly, now: now) + (tag == "pro" ? 0.005 : 0.05)
            _ = pool.recordObserved(tag, snapshot: RateLimitSnapshot(weekly: RateLimitWindow(usedPercent: used)), now: now)
        }
        for round in 0..<3000 {
            now += 12
            let session = "s\(round % 400)"
            guard case .success(let selection) = pool.select(provider: "pool", scope: .all, sessionID: session, now: now) else {
                Issue.record("no credential at round \(round)")
                return
            }
            var interruptedTags: Set<String> = []
            for case .rebalance(_, let credential, _) in selection.events.interruptions {
                interruptedTags.insert(credential)
                interruptions += 1
                placement = placement.filter { $0.value != credential }
            }
            if let previous = placement[session] {
                #expect(previous == selection.tag || interruptedTags.contains(previous), "session \(session) moved without an interruption")
                #expect(selection.isNewSession == (previous != selection.tag))
            }
            if placement[session] != selection.tag { newSessionsPerCredential[selection.tag, default: 0] += 1 }
            placement[session] = selection.tag
            charge(selection.tag)
        }
        #expect(interruptions > 0, "usage drift must have triggered rebalancing")
        #expect(newSessionsPerCredential["pro", default: 0] > newSessionsPerCredential["plus-a", default: 0])
        let weekly = ["plus-a", "plus-b", "pro"].map { pool[$0]!.usage.usedPercent(.weekly, now: now) }
        #expect(weekly.allSatisfy { $0 < 99 }, "nobody was driven to the cap: \(weekly)")
        #expect(pool.sessionCounts(now: now).values.reduce(0, +) <= 400)
    }
}
