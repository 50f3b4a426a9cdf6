import Foundation

/// A configuration reload, as the pool sees it: credentials and balancers come, go or change
/// without cutting anything that is under way.
extension CredentialPool {
    /// What a reload changed, by tag.
    public struct Reconfiguration: Hashable, Sendable {
        public var added: [String] = []
        public var removed: [String] = []
        /// Kept, with new caps, a new kind or (balancers) new members, strategy or threshold.
        public var changed: [String] = []
        public init() {}
    }

    /// Replaces the set of credentials and balancers.
    ///
    /// - A credential whose tag and kind stay keeps everything learned about it (usage, limits,
    ///   admin switch); new caps apply from the next selection. `replaced` names tags to start
    ///   afresh (another file, another peer): their state is the new one given.
    /// - A removed credential leaves the pool: no new sessions or requests go there, but nothing
    ///   open is interrupted — requests and WebSocket sessions already on it finish, and
    ///   their last reports about it are ignored.
    /// - A balancer keeps its sticky sessions; those on a credential that left it move at their
    ///   next request, like those on a credential that became unusable.
    public mutating func reconfigure(credentials newStates: [CredentialState], balancers definitions: [BalancerDefinition],
                                     replaced: Set<String> = []) -> (Reconfiguration, PoolEvents) {
        var summary = Reconfiguration()
        var next: [String: CredentialState] = [:]
        for state in newStates {
            guard let current = credentials[state.tag] else {
                summary.added.append(state.tag)
                next[state.tag] = state
                continue
            }
            if current.kind != state.kind || replaced.contains(state.tag) {
                summary.changed.append(state.tag)
                next[state.tag] = state
            } else {
                if current.caps != state.caps { summary.changed.append(state.tag) }
                next[state.tag] = current.withCaps(state.caps)
            }
        }
        summary.removed = order.filter { credentials[$0] != nil && next[$0] == nil }

        var nextBalancers: [String: BalancerState] = [:]
        for (index, definition) in definitions.enumerated() {
            guard var balancer = balancers[definition.tag] else {
                summary.added.append(definition.tag)
                nextBalancers[definition.tag] = newBalancer(definition, index: index)
                continue
            }
            if balancer.definition != definition {
                summary.changed.append(definition.tag)
                balancer.definition = definition
            }
            nextBalancers[definition.tag] = balancer
        }
        summary.removed += order.filter { balancers[$0] != nil && nextBalancers[$0] == nil }

        credentials = next
        balancers = nextBalancers
        order = newStates.map(\.tag) + definitions.map(\.tag)
        return (summary, PoolEvents(statusChanged: true))
    }

    /// - Parameter index: its place among the balancers; each gets its own random stream from the pool's seed.
    func newBalancer(_ definition: BalancerDefinition, index: Int) -> BalancerState {
        BalancerState(definition: definition, sessions: SessionTable(capacity: sessionCapacity), random: SplitMix64(seed: randomSeed &+ UInt64(index)))
    }
}

extension CredentialState {
    /// The same credential with other caps (caps are part of its identity otherwise).
    func withCaps(_ caps: UsageCaps) -> CredentialState {
        guard caps != self.caps else { return self }
        var copy = CredentialState(tag: tag, kind: kind, caps: caps, availability: availability)
        copy.isAPIKey = isAPIKey
        copy.disabledByAdmin = disabledByAdmin
        copy.usage = usage
        copy.unsavedTokenSince = unsavedTokenSince
        return copy
    }
}
