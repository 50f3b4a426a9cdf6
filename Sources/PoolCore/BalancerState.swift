import Foundation

/// One balancer's mutable state: its sticky sessions and strategy cursors.
struct BalancerState: Sendable {
    var definition: BalancerDefinition
    var sessions: SessionTable
    var roundRobinNext = 0
    var random: SplitMix64

    init(definition: BalancerDefinition, sessions: SessionTable, random: SplitMix64) {
        self.definition = definition
        self.sessions = sessions
        self.random = random
    }

    /// A new pick among usable candidates by the configured strategy.
    mutating func pick(from candidates: [CredentialState], now: Date) -> CredentialState? {
        switch definition.strategy {
        case .leastUsed:
            return CandidatePicker.leastUsed(candidates, now: now)
        case .roundRobin:
            guard let (picked, next) = CandidatePicker.roundRobin(candidates, members: definition.members, start: roundRobinNext) else {
                return nil
            }
            roundRobinNext = next
            return picked
        case .random:
            return candidates.randomElement(using: &random)
        case .fallback:
            return candidates.first
        }
    }

    /// The better credential a sticky session should move to, or nil to stay (§4.5).
    ///
    /// Moves when the current credential's weekly use exceeds the best one's by more than
    /// `rebalance_threshold / planWeight(current)` points: a Pro account (weight 10) is moved
    /// away from at a tenth of the gap a Plus account needs, because each of its points is
    /// worth ten times more.
    func rebalanceTarget(from current: CredentialState, candidates: [CredentialState], now: Date) -> CredentialState? {
        guard definition.strategy == .leastUsed, definition.rebalanceThreshold > 0,
              let best = CandidatePicker.leastUsed(candidates, now: now), best.tag != current.tag else { return nil }
        let effectiveThreshold = definition.rebalanceThreshold / current.planWeight
        let delta = current.usage.usedPercent(.weekly, now: now) - best.usage.usedPercent(.weekly, now: now)
        return delta > effectiveThreshold ? best : nil
    }
}
