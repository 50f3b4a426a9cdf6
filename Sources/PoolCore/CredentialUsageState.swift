public import Foundation

/// Everything known about one credential's rate limits, and the rules for updating it.
///
/// Pure value: every method takes `now`, so tests drive it with any clock.
public struct CredentialUsageState: Hashable, Sendable {
    /// The last known reading of one window.
    public struct Window: Hashable, Sendable {
        public var usedPercent: Double = 0
        public var resetAt: Date?
    }

    public private(set) var fiveHour = Window()
    public private(set) var weekly = Window()
    /// From the usage API, headers or events of a local credential.
    public private(set) var planType: String?
    /// The latest reading of each other limit family, by id.
    public private(set) var additional: [String: AdditionalRateLimit] = [:]
    /// The pool weight a peer instance reported.
    public private(set) var peerPlanWeight: Double?
    /// Set by a 429: no new work until then.
    public private(set) var rateLimitedUntil: Date?
    /// Last data or poll attempt; polls are due relative to it.
    public private(set) var lastUpdated: Date?
    /// When any usage data last arrived; nil means "never heard", which keeps the credential
    /// out of the aggregate instead of counting it as empty.
    public private(set) var lastDataAt: Date?
    public private(set) var consecutivePollFailures = 0
    public private(set) var lastPollError: String?
    /// After a usage-API 429, the next poll waits until then (not a failure).
    public private(set) var usageAPIRetryAt: Date?
    /// External credentials whose peer answered 400 are left alone until then.
    public private(set) var upstreamRejectedUntil: Date?

    public init() {}

    // MARK: Reading

    /// Utilization of a window, or 0 once its reset time has passed (the window has rolled over).
    public func usedPercent(_ kind: WindowKind, now: Date) -> Double {
        let window = self.window(kind)
        if let reset = window.resetAt, reset <= now { return 0 }
        return window.usedPercent
    }

    /// The reset time of a window while it is in the future.
    public func resetAt(_ kind: WindowKind, now: Date) -> Date? {
        guard let reset = window(kind).resetAt, reset > now else { return nil }
        return reset
    }

    public func isRateLimited(now: Date) -> Bool {
        rateLimitedUntil.map { $0 > now } ?? false
    }

    public func isUpstreamRejected(now: Date) -> Bool {
        upstreamRejectedUntil.map { $0 > now } ?? false
    }

    public var hasData: Bool { lastDataAt != nil }

    /// Delay after the last update before the next poll: the interval, or after failures
    /// 1, 2, 4, 5, 5 … minutes, or the usage API's own Retry-After.
    public func nextPollAt(interval: TimeInterval) -> Date {
        if let usageAPIRetryAt { return usageAPIRetryAt }
        guard let lastUpdated else { return .distantPast }
        if consecutivePollFailures > 0 {
            let backoff = min(PoolPolicy.pollFailureBackoffBase * pow(2, Double(consecutivePollFailures - 1)), PoolPolicy.pollFailureBackoffCap)
            return lastUpdated.addingTimeInterval(backoff)
        }
        return lastUpdated.addingTimeInterval(interval)
    }

    // MARK: Updates

    /// Applies rate-limit headers or events seen on a response.
    ///
    /// With `monotonic` (local credentials), a window's utilization never goes down unless its
    /// reset moved later (a new window began) or the old reset has passed: a response that
    /// started before a poll must not undo the poll's newer, higher value.
    /// - Returns: whether anything a client could see changed.
    @discardableResult
    public mutating func applyObserved(_ snapshot: RateLimitSnapshot, monotonic: Bool, now: Date) -> Bool {
        let before = self
        if let reading = snapshot.fiveHour { Self.merge(reading, into: &fiveHour, monotonic: monotonic, now: now) }
        if let reading = snapshot.weekly { Self.merge(reading, into: &weekly, monotonic: monotonic, now: now) }
        if let plan = snapshot.planType { planType = plan }
        if let weight = snapshot.peerPlanWeight { peerPlanWeight = weight }
        for limit in snapshot.additional { additional[limit.id] = limit }
        if snapshot.hasUsageData {
            consecutivePollFailures = 0
            lastPollError = nil
            lastUpdated = now
            lastDataAt = now
            upstreamRejectedUntil = nil
        }
        return before.visibleState != visibleState
    }

    /// Applies a successful usage poll (or a peer's status frame); it is authoritative.
    @discardableResult
    public mutating func applyPoll(_ snapshot: RateLimitSnapshot, now: Date) -> Bool {
        let before = self
        if let reading = snapshot.fiveHour { fiveHour = Window(usedPercent: reading.usedPercent, resetAt: reading.resetAt ?? resetAt(.fiveHour, now: now)) }
        if let reading = snapshot.weekly { weekly = Window(usedPercent: reading.usedPercent, resetAt: reading.resetAt ?? resetAt(.weekly, now: now)) }
        if let plan = snapshot.planType { planType = plan }
        if let weight = snapshot.peerPlanWeight { peerPlanWeight = weight }
        for limit in snapshot.additional { additional[limit.id] = limit }
        consecutivePollFailures = 0
        lastPollError = nil
        usageAPIRetryAt = nil
        upstreamRejectedUntil = nil
        lastUpdated = now
        lastDataAt = now
        if let until = rateLimitedUntil, until <= now { rateLimitedUntil = nil }
        return before.visibleState != visibleState
    }

    /// A poll failed (transport, token, non-200 other than 429, bad JSON): unusable until a success.
    public mutating func recordPollFailure(_ message: String, now: Date) {
        consecutivePollFailures += 1
        lastPollError = message
        lastUpdated = now
    }

    /// The usage API answered 429: not a failure; poll again after its Retry-After (60 s default).
    public mutating func recordUsageAPIRateLimited(retryAfter: TimeInterval?, now: Date) {
        usageAPIRetryAt = now.addingTimeInterval(retryAfter ?? PoolPolicy.usageAPIRetryDefault)
        lastUpdated = now
    }

    /// Upstream answered 429 for real work.
    /// - Returns: until when the credential is blocked.
    @discardableResult
    public mutating func recordRateLimited(_ rejection: RateLimitRejection, monotonic: Bool, now: Date) -> Date {
        applyObserved(rejection.snapshot, monotonic: monotonic, now: now)
        let until = rejection.limitedUntil(now: now)
        rateLimitedUntil = max(rateLimitedUntil ?? until, until)
        return until
    }

    /// A peer instance answered 400: leave it alone for an hour unless fresh data arrives first.
    public mutating func recordUpstreamRejected(now: Date, duration: TimeInterval = PoolPolicy.upstreamRejectionPause) {
        upstreamRejectedUntil = now.addingTimeInterval(duration)
    }

    /// Forgets everything learned (e.g. the credential file now holds another account).
    public mutating func reset() {
        self = CredentialUsageState()
    }

    // MARK: Helpers

    private func window(_ kind: WindowKind) -> Window {
        kind == .fiveHour ? fiveHour : weekly
    }

    private static func merge(_ reading: RateLimitWindow, into window: inout Window, monotonic: Bool, now: Date) {
        guard monotonic else {
            window.usedPercent = reading.usedPercent
            if let reset = reading.resetAt { window.resetAt = reset }
            return
        }
        var windowChanged = false
        if let reset = reading.resetAt, window.resetAt.map({ reset > $0 }) ?? true {
            window.resetAt = reset
            windowChanged = true
        }
        let storedExpired = window.resetAt.map { $0 <= now } ?? false
        if storedExpired {
            // The stored window is over: whatever arrives describes the new one.
            window = Window(usedPercent: reading.usedPercent, resetAt: reading.resetAt)
        } else if reading.usedPercent >= window.usedPercent || windowChanged {
            window.usedPercent = reading.usedPercent
        }
    }

    /// The fields that status consumers see; used to decide whether to notify them.
    private struct VisibleState: Equatable {
        var fiveHourUsed: Double?, fiveHourReset: Date?, weeklyUsed: Double?, weeklyReset: Date?, peerPlanWeight: Double?, planWeight: Double?
    }

    /// A value, not an array: this is compared on every observed answer.
    private var visibleState: VisibleState {
        VisibleState(fiveHourUsed: fiveHour.usedPercent, fiveHourReset: fiveHour.resetAt, weeklyUsed: weekly.usedPercent,
                     weeklyReset: weekly.resetAt, peerPlanWeight: peerPlanWeight, planWeight: planType.map { PlanWeight.weight(forPlan: $0) })
    }
}
