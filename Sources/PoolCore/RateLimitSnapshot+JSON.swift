public import Foundation

extension RateLimitSnapshot {
    /// Reads a WebSocket `codex.rate_limits` event (codex-client.md §3.4).
    ///
    /// An event about another limit family gives a snapshot with only that family in
    /// `additional`. nil when the text is not such an event.
    public init?(rateLimitsEvent data: Data, now: Date) {
        guard let event = data.withUnsafeBytes({ RateLimitsEvent(bytes: $0) }) else { return nil }
        self.init(rateLimitsEvent: event, now: now)
    }

    /// The same, from the event already read (the relay reads it once to rewrite it).
    public init(rateLimitsEvent event: RateLimitsEvent, now: Date) {
        let limit = Self.normalizedLimitID(event.meteredLimitName ?? event.limitName)
        self.init()
        guard limit == Self.trackedLimit else {
            var windows = RateLimitSnapshot()
            windows.place(Self.eventWindow(event.primary, now: now), slot: .primary)
            windows.place(Self.eventWindow(event.secondary, now: now), slot: .secondary)
            additional = [AdditionalRateLimit(id: limit, name: event.limitName, windows: windows)]
            return
        }
        place(Self.eventWindow(event.primary, now: now), slot: .primary)
        place(Self.eventWindow(event.secondary, now: now), slot: .secondary)
        planType = event.planType.flatMap { $0.isEmpty ? nil : $0.lowercased() }
        if let weight = event.planWeight, weight.isFinite, weight > 0 { peerPlanWeight = weight }
        if let has = event.hasCredits {
            credits = RateLimitCredits(hasCredits: has, unlimited: event.unlimitedCredits ?? false, balance: event.creditBalance ?? "")
        }
    }

    private static func eventWindow(_ window: RateLimitsEvent.Window?, now: Date) -> RateLimitWindow? {
        guard let window else { return nil }
        return RateLimitWindow.make(
            usedPercent: window.usedPercent, resetAt: resetDate(at: window.resetAt, after: window.resetAfterSeconds, now: now),
            windowMinutes: window.windowMinutes.flatMap { Int(exactly: $0) })
    }

    /// Reads the usage API's answer (`GET …/wham/usage`, codex-client.md §3.6).
    public init(usageResponse data: Data, now: Date) throws {
        let response = try JSONDecoder().decode(UsageResponse.self, from: data)
        self.init()
        place(response.rate_limit?.primary_window?.window(now: now), slot: .primary)
        place(response.rate_limit?.secondary_window?.window(now: now), slot: .secondary)
        planType = response.plan_type.flatMap { $0.isEmpty ? nil : $0.lowercased() }
        credits = response.credits?.value
        additional = (response.additional_rate_limits ?? []).compactMap { entry in
            guard let id = entry.metered_feature ?? entry.limit_name else { return nil }
            var windows = RateLimitSnapshot()
            windows.place(entry.rate_limit?.primary_window?.window(now: now), slot: .primary)
            windows.place(entry.rate_limit?.secondary_window?.window(now: now), slot: .secondary)
            return AdditionalRateLimit(id: id, name: entry.limit_name, windows: windows)
        }
    }
}

/// A reset given as unix seconds, or else as seconds from now.
/// A delay is bounded like a date (an absurd one would not fit the integers the rewritten
/// limits carry), and a date wins over a delay.
private func resetDate(at unixSeconds: Double?, after seconds: Double?, now: Date) -> Date? {
    unixSeconds.flatMap(RateLimitSnapshot.unixDate) ?? seconds.flatMap { $0 > 0 ? RateLimitSnapshot.unixDate(now.timeIntervalSince1970 + $0) : nil }
}

// Wire shapes. Field names follow the JSON; every field is optional so that a partial or
// newer message still yields what it has.

private struct UsageResponse: Decodable {
    var plan_type: String?
    var rate_limit: UsageLimits?
    var credits: WireCredits?
    var additional_rate_limits: [AdditionalUsage]?
}

private struct AdditionalUsage: Decodable {
    var limit_name: String?
    var metered_feature: String?
    var rate_limit: UsageLimits?
}

private struct UsageLimits: Decodable {
    var primary_window: UsageWindow?
    var secondary_window: UsageWindow?
}

private struct UsageWindow: Decodable {
    var used_percent: Double?
    var limit_window_seconds: Double?
    var reset_at: Double?
    var reset_after_seconds: Double?

    func window(now: Date) -> RateLimitWindow? {
        // Seconds to minutes, rounded up, as the headers carry it.
        let minutes = limit_window_seconds.flatMap { $0 > 0 ? Int(exactly: ($0 / 60).rounded(.up)) : nil }
        return RateLimitWindow.make(usedPercent: used_percent, resetAt: resetDate(at: reset_at, after: reset_after_seconds, now: now),
                                    windowMinutes: minutes)
    }
}

private struct WireCredits: Decodable {
    var has_credits: Bool?
    var unlimited: Bool?
    var balance: LenientString?

    var value: RateLimitCredits? {
        guard let has_credits else { return nil }
        return RateLimitCredits(hasCredits: has_credits, unlimited: unlimited ?? false, balance: balance?.text ?? "")
    }
}

/// A JSON value that may be a string or a number (the backend has sent both for balances).
private struct LenientString: Decodable {
    var text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else {
            text = String(try container.decode(Double.self))
        }
    }
}
