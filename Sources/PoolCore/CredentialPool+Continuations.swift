public import Foundation

/// Turns stay on the account that started them (codex-wire-2026.md §1): continuation state is
/// remembered with the credential that issued it, and a request carrying it goes back there —
/// or, when that credential cannot serve any more, is told so, and never sent elsewhere.
extension CredentialPool {
    /// Remembers that `tag` issued these values.
    public mutating func bindContinuations(_ values: [(ContinuationBindings.Kind, String)], to tag: String, now: Date) {
        for (kind, value) in values { continuations.bind(kind, value, to: tag, now: now) }
    }

    /// The credential that issued `value`, if known.
    public mutating func continuationCredential(_ kind: ContinuationBindings.Kind, _ value: String, now: Date) -> String? {
        continuations.credential(for: kind, value, now: now)
    }

    /// Where a request whose state was issued by `boundTag` may go for this provider and scope.
    public mutating func continuationTarget(boundTag: String?, provider: String, scope: SelectionScope, now: Date) -> ContinuationTarget {
        guard let boundTag else { return .unbound }
        let usable: Bool
        if let balancer = balancers[provider] {
            usable = candidates(of: balancer.definition, scope: scope, now: now).0.contains { $0.tag == boundTag }
        } else {
            usable = provider == boundTag && (try? selectSingle(provider, now: now).get()) != nil
        }
        // Disabled by an operator mid-turn: the turn still finishes there.
        if !usable, let state = credentials[boundTag], state.disabledByAdmin, members(of: provider).contains(boundTag),
           state.usabilityIgnoringAdmin(now: now).isUsable {
            return .continueOn(boundTag)
        }
        return usable ? .continueOn(boundTag) : .lost(boundTag)
    }

    /// Whether the provider has a usable credential for this scope other than `tag` (a turn cut
    /// short on `tag` can then be resent and finish there).
    public func hasUsableCredential(provider: String, scope: SelectionScope, otherThan tag: String, now: Date) -> Bool {
        guard let balancer = balancers[provider] else { return false }
        return candidates(of: balancer.definition, scope: scope, now: now).0.contains { $0.tag != tag }
    }

    /// Puts a session back on `tag` for the reconnect of a turn that landed elsewhere: its next
    /// selection (within `PoolPolicy.turnHold`) keeps it there without rebalancing.
    public mutating func holdSession(provider: String, scope: SelectionScope, sessionID: String, on tag: String, now: Date) {
        balancers[provider]?.sessions.assign(SessionTable.Key(sessionID: sessionID, scope: scope), to: tag, now: now,
                                             holdUntil: now.addingTimeInterval(PoolPolicy.turnHold))
    }
}
