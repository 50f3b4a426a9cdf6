import Foundation
@testable import PoolCore
import PropertyBased
import Testing

/// A random credential: plan, use of both windows, reset distance, caps, and whether it is limited or offline.
struct CredentialSpec: Sendable, CustomStringConvertible {
    var plan: String
    var fiveHour: Double
    var weekly: Double
    var resetHours: Double
    var weeklyLimit: Int
    var rateLimited: Bool
    var offline: Bool
    var external: Bool

    func state(_ index: Int) -> CredentialState {
        var state = credential(
            "c\(index)", kind: external ? .externalReceiver : .local, plan: plan, fiveHour: fiveHour, weekly: weekly,
            weeklyResetIn: resetHours * hour, caps: external ? nil : UsageCaps(weekly: .limit(weeklyLimit)))
        if rateLimited { state.usage.recordRateLimited(RateLimitRejection(retryAfter: 600), monotonic: true, now: t0) }
        if offline { state.availability = .unavailable(UnavailableReason("offline")) }
        return state
    }

    var description: String { "\(plan) 5h=\(fiveHour) w=\(weekly) reset=\(resetHours)h limit=\(weeklyLimit) rl=\(rateLimited) off=\(offline) ext=\(external)" }
}

let credentialSpecs = zip(
    Gen.element(of: ["plus", "pro", "prolite", "free", "mystery"]), Gen.double(in: 0...130), Gen.double(in: 0...130),
    Gen.double(in: -10...200), Gen.int(in: 0...100), Gen.bool(0.2), Gen.bool(0.2), Gen.bool(0.3)
).map { CredentialSpec(plan: $0 ?? "plus", fiveHour: $1, weekly: $2, resetHours: $3, weeklyLimit: $4, rateLimited: $5, offline: $6, external: $7) }
    .array(of: 1...8)

@Suite(.timeLimit(.minutes(1))) struct PoolPropertyTests {
    @Test func leastUsedNeverPicksAnUnusableCredential() async {
        await propertyCheck(count: 300, input: credentialSpecs) { specs in
            let states = specs.enumerated().map { $1.state($0) }
            var pool = CredentialPool(credentials: states, balancers: [BalancerDefinition(tag: "pool", members: states.map(\.tag))])
            for scope in [SelectionScope.all, .nonExternal] {
                switch pool.select(provider: "pool", scope: scope, sessionID: "s", now: t0) {
                case .success(let selection):
                    let picked = pool[selection.tag]!
                    #expect(picked.usability(now: t0) == .usable)
                    #expect(scope == .all || !picked.isExternal)
                case .failure(let failure):
                    let anyCandidate = states.contains { $0.usability(now: t0).isUsable && (scope == .all || !$0.isExternal) }
                    #expect(!anyCandidate, "failed although a candidate existed: \(failure.explanation)")
                }
            }
        }
    }

    @Test func aggregatedUtilizationStaysWithinZeroAndHundred() async {
        await propertyCheck(count: 300, input: credentialSpecs, Gen.double(in: -100...400)) { specs, offsetHours in
            let states = specs.enumerated().map { $1.state($0) }
            let status = AggregateStatus.compute(states, now: t0 + offsetHours * hour)
            #expect((0...100).contains(status.fiveHourUtilization))
            #expect((0...100).contains(status.weeklyUtilization))
            #expect(status.planWeight >= 0)
            if let reset = status.weeklyReset { #expect(reset > t0 + offsetHours * hour) }
        }
    }

    @Test func roundRobinIsFair() async {
        await propertyCheck(count: 100, input: Gen.int(in: 1...9), Gen.int(in: 1...20)) { members, rounds in
            let states = (0..<members).map { credential("m\($0)") }
            var pool = CredentialPool(
                credentials: states, balancers: [BalancerDefinition(tag: "pool", members: states.map(\.tag), strategy: .roundRobin)])
            var counts: [String: Int] = [:]
            for _ in 0..<(members * rounds) {
                if let tag = pool.select(provider: "pool", scope: .all, sessionID: nil, now: t0).tag { counts[tag, default: 0] += 1 }
            }
            #expect(counts.count == members)
            #expect(counts.values.allSatisfy { $0 == rounds })
        }
    }
}
