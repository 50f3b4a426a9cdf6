public import Foundation

/// A balancer as the pool needs it.
public struct BalancerDefinition: Hashable, Sendable {
    public var tag: String
    public var members: [String]
    public var strategy: BalancerStrategy
    public var rebalanceThreshold: Double

    public init(tag: String, members: [String], strategy: BalancerStrategy = .default, rebalanceThreshold: Double = 0) {
        self.tag = tag
        self.members = members
        self.strategy = strategy
        self.rebalanceThreshold = rebalanceThreshold
    }
}

/// What must be cut because a credential became unusable or a balancer moved its sessions.
public enum Interruption: Hashable, Sendable {
    /// Every in-flight request and WebSocket session on this credential.
    case credential(String)
    /// The sessions of one balancer and scope on this credential (rebalancing).
    case rebalance(balancer: String, credential: String, scope: SelectionScope)
}

/// Side effects of a pool update, for the I/O shell to carry out.
public struct PoolEvents: Hashable, Sendable {
    public var interruptions: [Interruption] = []
    /// True when an input of the aggregated status changed; status watchers recompute.
    public var statusChanged = false

    public init(interruptions: [Interruption] = [], statusChanged: Bool = false) {
        self.interruptions = interruptions
        self.statusChanged = statusChanged
    }

    public mutating func merge(_ other: PoolEvents) {
        interruptions += other.interruptions
        statusChanged = statusChanged || other.statusChanged
    }
}

/// The credential picked for a request.
public struct Selection: Hashable, Sendable {
    public var tag: String
    /// True when this request started a new sticky assignment (logged as "assigned credential").
    public var isNewSession: Bool
    /// Sessions a rebalance moved away from their credential.
    public var events: PoolEvents
}

/// All credentials and balancers of one instance, with selection, stickiness, rebalancing and
/// failover (§3.8, §4). A pure value: the gateway keeps it behind a lock and carries out the
/// returned events.
public struct CredentialPool: Sendable {
    public internal(set) var credentials: [String: CredentialState] = [:]
    /// Tags in configured order.
    public internal(set) var order: [String]
    var balancers: [String: BalancerState] = [:]
    private var lastSessionPurge: Date?
    let sessionCapacity: Int
    let randomSeed: UInt64
    /// Which credential issued the continuation state clients send back.
    public internal(set) var continuations = ContinuationBindings()

    public init(credentials: [CredentialState], balancers: [BalancerDefinition], sessionCapacity: Int = 100_000,
                randomSeed: UInt64 = UInt64.random(in: .min ... .max)) {
        order = credentials.map(\.tag) + balancers.map(\.tag)
        self.sessionCapacity = sessionCapacity
        self.randomSeed = randomSeed
        for credential in credentials { self.credentials[credential.tag] = credential }
        for (index, definition) in balancers.enumerated() { self.balancers[definition.tag] = newBalancer(definition, index: index) }
    }

    public subscript(tag: String) -> CredentialState? { credentials[tag] }

    public func isBalancer(_ tag: String) -> Bool { balancers[tag] != nil }

    /// The credentials a provider (a credential or a balancer tag) draws from.
    public func members(of provider: String) -> [String] {
        balancers[provider]?.definition.members ?? (credentials[provider] != nil ? [provider] : [])
    }

    /// Each credential of `members(of:)` in order, without an array made for a lone credential
    /// or of the states (this runs for every request and answer).
    public func forEachMember(of provider: String, _ body: (CredentialState) -> Void) {
        if let balancer = balancers[provider] {
            for tag in balancer.definition.members { if let credential = credentials[tag] { body(credential) } }
        } else if let credential = credentials[provider] {
            body(credential)
        }
    }

    // MARK: Selection

    /// Picks the credential for one request or WebSocket session.
    ///
    /// With a session id, a balancer keeps the session on the credential it first chose while
    /// that stays usable, unless least-used rebalancing finds a clearly better one.
    /// - Parameter excluding: credentials not to pick for this request, whatever their state
    ///   (image requests leave out accounts without images and those at their image concurrency).
    public mutating func select(provider: String, scope: SelectionScope, sessionID: String?, now: Date,
                                excluding: Set<String> = []) -> Result<Selection, SelectionFailure> {
        guard balancers[provider] != nil else { return excluding.contains(provider) ? excludedFailure(provider, now: now) : selectSingle(provider, now: now) }
        purgeExpiredSessionsIfDue(now: now)
        guard var balancer = balancers[provider] else { return selectSingle(provider, now: now) }
        defer { balancers[provider] = balancer }
        var (candidates, skipped) = candidates(of: balancer.definition, scope: scope, now: now)
        if !excluding.isEmpty {
            skipped += candidates.filter { excluding.contains($0.tag) }.map { .init(tag: $0.tag, reason: Self.excludedReason) }
            candidates.removeAll { excluding.contains($0.tag) }
        }
        let key = sessionID.map { SessionTable.Key(sessionID: $0, scope: scope) }
        var events = PoolEvents()

        if let key, balancer.definition.strategy != .fallback, let current = balancer.sessions.lookup(key, now: now) {
            if let currentState = candidates.first(where: { $0.tag == current }) {
                guard !balancer.sessions.takeHold(key, now: now), let rebalance = balancer.rebalanceTarget(from: currentState, candidates: candidates, now: now) else {
                    return .success(Selection(tag: current, isNewSession: false, events: events))
                }
                balancer.sessions.removeAll(on: current, scope: scope)
                events.interruptions.append(.rebalance(balancer: provider, credential: current, scope: scope))
                balancer.sessions.assign(key, to: rebalance.tag, now: now)
                return .success(Selection(tag: rebalance.tag, isNewSession: true, events: events))
            }
            balancer.sessions.remove(key)
        }

        guard let picked = balancer.pick(from: candidates, now: now) else {
            return .failure(failure(provider: provider, skipped: skipped, now: now))
        }
        var isNew = true
        if let key {
            // Fallback never sticks, but remembers sessions so only a session's first request counts as new.
            isNew = balancer.definition.strategy != .fallback || !balancer.sessions.contains(key, now: now)
            balancer.sessions.assign(key, to: picked.tag, now: now)
        }
        return .success(Selection(tag: picked.tag, isNewSession: isNew, events: events))
    }

    /// Handles a 429 from `failedTag`: marks it rate-limited and, for balancers, moves the
    /// session to the next usable credential (§4.4).
    public mutating func failover(provider: String, scope: SelectionScope, sessionID: String?, failedTag: String,
                                  rejection: RateLimitRejection, now: Date, excluding: Set<String> = []) -> (events: PoolEvents, next: Result<Selection, SelectionFailure>) {
        let events = recordRateLimited(failedTag, rejection: rejection, now: now)
        guard balancers[provider] != nil else {
            return (events, .failure(failure(provider: provider, skipped: [skipReason(for: failedTag, now: now)], now: now)))
        }
        if let sessionID { balancers[provider]?.sessions.remove(SessionTable.Key(sessionID: sessionID, scope: scope)) }
        return (events, select(provider: provider, scope: scope, sessionID: sessionID, now: now, excluding: excluding))
    }

    /// Drops expired sticky sessions of every balancer, at most every `sessionPurgeInterval`:
    /// selections call it, so a long-running balancer does not keep sessions nobody will use.
    mutating func purgeExpiredSessionsIfDue(now: Date) {
        if let last = lastSessionPurge, now.timeIntervalSince(last) < PoolPolicy.sessionPurgeInterval { return }
        lastSessionPurge = now
        for tag in balancers.keys { balancers[tag]?.sessions.purgeExpired(now: now) }
    }

    /// Live sessions per credential tag, over all balancers.
    public func sessionCounts(now: Date) -> [String: Int] {
        balancers.values.reduce(into: [:]) { counts, balancer in
            counts.merge(balancer.sessions.countsByTag(now: now), uniquingKeysWith: +)
        }
    }

    // MARK: Status

    /// The aggregate a user sees: the provider's credentials minus the user's own instance,
    /// and minus external credentials unless the user may use them (§9.1).
    public func aggregateStatus(provider: String, viewer: StatusViewer, now: Date) -> AggregateStatus {
        var sum = AggregateStatus.Sum(now: now)
        forEachMember(of: provider) { credential in
            guard credential.tag != viewer.ownInstanceTag, !credential.isExternal || viewer.allowExternalUsage else { return }
            sum.add(credential)
        }
        return sum.status
    }

    /// The other limit families the provider's credentials report, each aggregated over the
    /// members that report it (by plan weight), ordered by id.
    public func additionalLimits(provider: String, viewer: StatusViewer) -> [AdditionalRateLimit] {
        let included = members(of: provider).compactMap { credentials[$0] }.filter { credential in
            credential.tag != viewer.ownInstanceTag && (!credential.isExternal || viewer.allowExternalUsage)
        }
        let ids = Set(included.flatMap(\.usage.additional.keys)).sorted()
        return ids.compactMap { id in
            AdditionalRateLimit.aggregate(included.compactMap { credential in credential.usage.additional[id].map { ($0, credential.planWeight) } })
        }
    }

    /// Why a credential would be skipped right now for this scope, or nil when it is a candidate.
    public func skipReason(_ credential: CredentialState, scope: SelectionScope, balanced: Bool, now: Date) -> SkipReason? {
        if balanced, credential.isExternal, scope == .nonExternal { return .externalNotAllowed }
        if balanced, credential.isAPIKey { return .apiKeyCredential }
        if case .unusable(let reason) = credential.usability(now: now) { return reason }
        return nil
    }

    /// Why `provider` cannot serve a new request right now, or nil when one of its credentials can;
    /// what clients are told after a failed retry or an interruption.
    public func unavailability(provider: String, scope: SelectionScope, now: Date) -> SelectionFailure? {
        guard let balancer = balancers[provider] else {
            if case .failure(let failure) = selectSingle(provider, now: now) { return failure }
            return nil
        }
        let (usable, skipped) = candidates(of: balancer.definition, scope: scope, now: now)
        return usable.isEmpty ? failure(provider: provider, skipped: skipped, now: now) : nil
    }

    // MARK: Helpers

    /// Why a credential the request excluded was not picked.
    private static let excludedReason = SkipReason.unavailable(UnavailableReason("not for this request"))

    private func excludedFailure(_ tag: String, now: Date) -> Result<Selection, SelectionFailure> {
        .failure(SelectionFailure(provider: tag, skipped: [.init(tag: tag, reason: Self.excludedReason)], earliestRecovery: nil, now: now))
    }

    func selectSingle(_ tag: String, now: Date) -> Result<Selection, SelectionFailure> {
        guard let credential = credentials[tag] else {
            let missing = SkipReason.unavailable(UnavailableReason("no credential or balancer is tagged \(tag)"))
            return .failure(SelectionFailure(provider: tag, skipped: [.init(tag: tag, reason: missing)], earliestRecovery: nil, now: now))
        }
        if let reason = skipReason(credential, scope: .all, balanced: false, now: now) {
            return .failure(failure(provider: tag, skipped: [.init(tag: tag, reason: reason)], now: now))
        }
        return .success(Selection(tag: tag, isNewSession: false, events: PoolEvents()))
    }

    func candidates(of balancer: BalancerDefinition, scope: SelectionScope, now: Date) -> ([CredentialState], [SelectionFailure.Skipped]) {
        var usable: [CredentialState] = []
        var skipped: [SelectionFailure.Skipped] = []
        for tag in balancer.members {
            guard let credential = credentials[tag] else { continue }
            if let reason = skipReason(credential, scope: scope, balanced: true, now: now) {
                skipped.append(.init(tag: tag, reason: reason))
            } else {
                usable.append(credential)
            }
        }
        return (usable, skipped)
    }

    private func skipReason(for tag: String, now: Date) -> SelectionFailure.Skipped {
        let reason = credentials[tag].flatMap { skipReason($0, scope: .all, balanced: false, now: now) }
        return .init(tag: tag, reason: reason ?? .unavailable(UnavailableReason("rejected by upstream")))
    }

    private func failure(provider: String, skipped: [SelectionFailure.Skipped], now: Date) -> SelectionFailure {
        let recoveries = skipped.filter(\.reason.isLimit).compactMap { credentials[$0.tag]?.earliestRecovery(now: now) }
        return SelectionFailure(provider: provider, skipped: skipped, earliestRecovery: recoveries.min(), now: now)
    }
}

/// Who is looking at the status: their own instance is excluded, and external credentials
/// count only if they may use them. With no users configured, everything counts.
public struct StatusViewer: Hashable, Sendable {
    public var ownInstanceTag: String?
    public var allowExternalUsage: Bool

    public init(ownInstanceTag: String? = nil, allowExternalUsage: Bool = true) {
        self.ownInstanceTag = ownInstanceTag
        self.allowExternalUsage = allowExternalUsage
    }

    public static let everyone = StatusViewer()
}

extension CredentialState {
    /// The values the aggregate status depends on; a change here notifies status watchers.
    /// What the aggregate reads of this credential, to tell whether an operation changed it
    /// (a value, not an array: this runs on every observed answer).
    struct StatusInputs: Equatable {
        var hasData: Bool, fiveHourUsed: Double, fiveHourReset: Date?, weeklyUsed: Double, weeklyReset: Date?, planWeight: Double
    }

    func statusInputs(now: Date) -> StatusInputs {
        StatusInputs(hasData: usage.hasData, fiveHourUsed: usage.usedPercent(.fiveHour, now: now), fiveHourReset: usage.resetAt(.fiveHour, now: now),
                     weeklyUsed: usage.usedPercent(.weekly, now: now), weeklyReset: usage.resetAt(.weekly, now: now), planWeight: planWeight)
    }
}
