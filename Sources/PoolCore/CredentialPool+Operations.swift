public import Foundation

/// Every change of a credential's state, as a named operation of the pool. Each reports what the
/// change requires (interruptions, status notifications) for the I/O shell to carry out.
extension CredentialPool {
    /// Changes one credential and reports what the change requires: an interruption on the
    /// usable → unusable transition (once per transition) and whether the status changed —
    /// always, with `notifying` (for news status watchers want even when no input moved).
    @discardableResult
    mutating func update(_ tag: String, now: Date, notifying: Bool = false, _ change: (inout CredentialState) -> Void) -> PoolEvents {
        guard let index = credentials.index(forKey: tag) else { return PoolEvents(statusChanged: notifying) }
        // Changed where it lies: a copy taken out and stored back copied the state's storage
        // on every observation (one per answer).
        let wasUsable = credentials.values[index].usability(now: now).isUsable
        let statusBefore = credentials.values[index].statusInputs(now: now)
        change(&credentials.values[index])
        let state = credentials.values[index]
        var events = PoolEvents(statusChanged: notifying || statusBefore != state.statusInputs(now: now))
        if wasUsable, !state.usability(now: now).isUsable { events.interruptions.append(.credential(tag)) }
        return events
    }

    /// An operator disabled or enabled the credential. Work under way is not cut: open sessions
    /// and turns finish, new ones go elsewhere.
    public mutating func setDisabledByAdmin(_ tag: String, _ disabled: Bool, now: Date) -> PoolEvents {
        var events = update(tag, now: now, notifying: true) { $0.disabledByAdmin = disabled }
        events.interruptions.removeAll()
        return events
    }

    public mutating func recordObserved(_ tag: String, snapshot: RateLimitSnapshot, now: Date) -> PoolEvents {
        update(tag, now: now) { $0.usage.applyObserved(snapshot, monotonic: $0.kind == .local, now: now) }
    }

    public mutating func recordRateLimited(_ tag: String, rejection: RateLimitRejection, now: Date) -> PoolEvents {
        update(tag, now: now, notifying: true) { $0.usage.recordRateLimited(rejection, monotonic: $0.kind == .local, now: now) }
    }

    /// The credential's file was (re)read: its availability, whether it holds an API key, the plan its
    /// token names, and whether it now holds another account (everything learned is then forgotten).
    public mutating func credentialFileLoaded(_ tag: String, availability: Availability, isAPIKey: Bool, planHint: String?,
                                              accountChanged: Bool, now: Date) -> PoolEvents {
        update(tag, now: now) { state in
            if accountChanged { state.usage.reset() }
            state.availability = availability
            state.isAPIKey = isAPIKey
            if let planHint, state.usage.planType == nil {
                state.usage.applyObserved(RateLimitSnapshot(planType: planHint), monotonic: true, now: now)
            }
        }
    }

    /// A usage poll answered, or a peer's status frame arrived: authoritative for the credential.
    public mutating func usagePollAnswered(_ tag: String, snapshot: RateLimitSnapshot, now: Date) -> PoolEvents {
        update(tag, now: now, notifying: true) { $0.usage.applyPoll(snapshot, now: now) }
    }

    /// A usage poll failed (transport, token, an unexpected status, an unreadable answer): the
    /// credential is unusable until a poll succeeds, and the next one backs off.
    public mutating func usagePollFailed(_ tag: String, reason: String, now: Date) -> PoolEvents {
        update(tag, now: now, notifying: true) { $0.usage.recordPollFailure(reason, now: now) }
    }

    /// The usage API answered 429: no failure, the next poll waits for its Retry-After.
    public mutating func usageAPIRateLimited(_ tag: String, retryAfter: TimeInterval?, now: Date) -> PoolEvents {
        update(tag, now: now, notifying: true) { $0.usage.recordUsageAPIRateLimited(retryAfter: retryAfter, now: now) }
    }

    /// Whether the credential's current token is saved in its file (nil) or only in memory (since when).
    public mutating func tokenPersistence(_ tag: String, unsavedSince: Date?, now: Date) -> PoolEvents {
        update(tag, now: now) { $0.unsavedTokenSince = unsavedSince }
    }

    /// A connector attached or went away, or a file could not be read.
    public mutating func setAvailability(_ tag: String, _ availability: Availability, now: Date) -> PoolEvents {
        update(tag, now: now) { $0.availability = availability }
    }

    /// A peer instance answered 400 (§5.6): it rests for `PoolPolicy.upstreamRejectionPause`.
    public mutating func upstreamRejected(_ tag: String, now: Date) -> PoolEvents {
        update(tag, now: now, notifying: true) { $0.usage.recordUpstreamRejected(now: now) }
    }
}
