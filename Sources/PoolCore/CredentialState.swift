public import Foundation

/// One credential as the balancer sees it: identity, caps, availability and usage.
public struct CredentialState: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// A local `auth.json`.
        case local
        /// Another instance reached by URL, whether or not this side also dials it.
        case externalForward
        /// Another instance that dials in; usable only while its tunnel is up.
        case externalReceiver
    }

    public let tag: String
    public let kind: Kind
    public let caps: UsageCaps
    /// Whether the credential can be used at all right now (file loaded, tunnel up, …).
    public internal(set) var availability: Availability
    /// API-key credentials have no subscription limits and are never balanced.
    public internal(set) var isAPIKey = false
    /// An operator took it out of rotation (admin API); persisted by the gateway.
    public internal(set) var disabledByAdmin = false
    public internal(set) var usage = CredentialUsageState()
    /// Since when the credential's rotated token exists only in memory (its file could not be
    /// written); nil when the file holds it. Shown to operators until it is saved.
    public internal(set) var unsavedTokenSince: Date?

    public init(tag: String, kind: Kind, caps: UsageCaps? = nil, availability: Availability = .available) {
        self.tag = tag
        self.kind = kind
        self.caps = caps ?? (kind == .local ? UsageCaps() : .external)
        self.availability = availability
    }

    public var isExternal: Bool { kind != .local }

    /// Plan weight: from the plan type for local credentials, the peer's report (10 until
    /// known) for external ones.
    public var planWeight: Double {
        isExternal ? (usage.peerPlanWeight ?? PlanWeight.externalDefault) : PlanWeight.weight(forPlan: usage.planType)
    }

    /// Whether the credential may take new work now, and if not, why (§3.8).
    public func usability(now: Date) -> Usability {
        if disabledByAdmin { return .unusable(.disabledByAdmin) }
        return usabilityIgnoringAdmin(now: now)
    }

    /// Usability as if no operator had disabled it: a turn already under way may finish on a
    /// credential disabled since (the change takes effect at the next turn).
    public func usabilityIgnoringAdmin(now: Date) -> Usability {
        if case .unavailable(let reason) = availability { return .unusable(.unavailable(reason)) }
        if usage.consecutivePollFailures > 0 {
            return .unusable(.usagePollFailing(failures: usage.consecutivePollFailures, lastError: usage.lastPollError ?? "unknown error"))
        }
        if let until = usage.rateLimitedUntil, until > now { return .unusable(.rateLimited(until: until)) }
        if let until = usage.upstreamRejectedUntil, until > now { return .unusable(.upstreamRejected(until: until)) }
        let fiveHour = usage.usedPercent(.fiveHour, now: now)
        if fiveHour >= caps.fiveHourCapPercent {
            return .unusable(.capReached(.fiveHour, usedPercent: fiveHour, capPercent: caps.fiveHourCapPercent,
                                         resetAt: usage.resetAt(.fiveHour, now: now)))
        }
        let weekly = usage.usedPercent(.weekly, now: now)
        if weekly >= caps.weeklyCapPercent {
            return .unusable(.capReached(.weekly, usedPercent: weekly, capPercent: caps.weeklyCapPercent,
                                         resetAt: usage.resetAt(.weekly, now: now)))
        }
        return .usable
    }

    /// The earliest moment this credential might be usable again: its rate-limit end, or the
    /// earlier of its window resets; nil when nothing is known.
    public func earliestRecovery(now: Date) -> Date? {
        if let until = usage.rateLimitedUntil, until > now { return until }
        return [usage.resetAt(.fiveHour, now: now), usage.resetAt(.weekly, now: now)].compactMap { $0 }.min()
    }
}

/// Whether a credential can be used at all, independent of its limits.
public enum Availability: Hashable, Sendable {
    case available
    case unavailable(UnavailableReason)
}

/// Why a credential cannot be used at all, in words an operator can act on.
public struct UnavailableReason: Hashable, Sendable, CustomStringConvertible {
    public var message: String
    /// Since when, for reasons where that matters ("connector offline since …").
    public var since: Date?

    public init(_ message: String, since: Date? = nil) {
        self.message = message
        self.since = since
    }

    public var description: String {
        guard let since else { return message }
        return "\(message) since \(DurationText.timestamp(since))"
    }
}

public enum Usability: Hashable, Sendable {
    case usable
    case unusable(SkipReason)

    public var isUsable: Bool { self == .usable }
}
