public import Foundation

/// Why no credential could serve a request, with every candidate and the reason it was skipped.
public struct SelectionFailure: Error, Hashable, Sendable {
    public struct Skipped: Hashable, Sendable {
        public var tag: String
        public var reason: SkipReason

        public init(tag: String, reason: SkipReason) {
            self.tag = tag
            self.reason = reason
        }
    }

    /// The credential or balancer the user is served by.
    public var provider: String
    public var skipped: [Skipped]
    /// The earliest time any skipped credential may recover, when all of them are only limited.
    public var earliestRecovery: Date?
    public let now: Date

    public init(provider: String, skipped: [Skipped], earliestRecovery: Date?, now: Date) {
        self.provider = provider
        self.skipped = skipped
        self.earliestRecovery = earliestRecovery
        self.now = now
    }

    /// True when every candidate is merely rate-limited or capped, so waiting helps: clients get
    /// a 429 `usage_limit_reached` (which Codex understands) rather than a 400.
    public var isRateLimitOnly: Bool {
        let relevant = skipped.filter { $0.reason != .externalNotAllowed && $0.reason != .apiKeyCredential }
        return !relevant.isEmpty && relevant.allSatisfy(\.reason.isLimit)
    }

    /// Seconds until the earliest recovery, for `resets_in_seconds` / `Retry-After`.
    public var retryAfterSeconds: Int? {
        earliestRecovery.map { max(1, Int($0.timeIntervalSince(now).rounded(.up))) }
    }

    /// The short sentence of the reference (`all credentials rate-limited, earliest reset in 2h3m`).
    public var summary: String {
        if !isRateLimitOnly { return "all credentials unavailable" }
        guard let earliestRecovery else { return "all credentials rate-limited" }
        return "all credentials rate-limited, earliest reset in \(DurationText.interval(earliestRecovery.timeIntervalSince(now)))"
    }

    /// The summary followed by each candidate and why it was skipped.
    public var explanation: String {
        let details = skipped.map { "\($0.tag): \($0.reason.description(now: now))" }.joined(separator: "; ")
        return details.isEmpty ? summary : "\(summary) (\(details))"
    }
}
