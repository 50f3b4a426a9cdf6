public import Foundation

extension RateLimitSnapshot {
    /// Reads a WebSocket `codex.rate_limits` event (codex-client.md §3.4).
    ///
    /// - Returns: nil when the text is not such an event, or when it is about a limit family
    ///   other than the tracked one.
    public init?(rateLimitsEvent data: Data, now: Date) {
        guard let event = try? JSONDecoder().decode(RateLimitsEvent.self, from: data), event.type == "codex.rate_limits" else {
            return nil
        }
        let limit = Self.normalizedLimitID(event.metered_limit_name ?? event.limit_name)
        guard limit == Self.trackedLimit else { return nil }
        self.init()
        place(event.rate_limits?.primary?.window(now: now), slot: .primary)
        place(event.rate_limits?.secondary?.window(now: now), slot: .secondary)
        planType = event.plan_type.flatMap { $0.isEmpty ? nil : $0.lowercased() }
        if let weight = event.plan_weight, weight.isFinite, weight > 0 { peerPlanWeight = weight }
        credits = event.credits?.value
    }

    /// Reads the usage API's answer (`GET …/wham/usage`, codex-client.md §3.6).
    public init(usageResponse data: Data, now: Date) throws {
        let response = try JSONDecoder().decode(UsageResponse.self, from: data)
        self.init()
        place(response.rate_limit?.primary_window?.window(now: now), slot: .primary)
        place(response.rate_limit?.secondary_window?.window(now: now), slot: .secondary)
        planType = response.plan_type.flatMap { $0.isEmpty ? nil : $0.lowercased() }
        credits = response.credits?.value
    }
}

/// A reset given as unix seconds, or else as seconds from now.
private func resetDate(at unixSeconds: Double?, after seconds: Double?, now: Date) -> Date? {
    unixSeconds.flatMap(RateLimitSnapshot.unixDate) ?? seconds.flatMap { $0 > 0 && $0.isFinite ? now.addingTimeInterval($0) : nil }
}

// Wire shapes. Field names follow the JSON; every field is optional so that a partial or
// newer message still yields what it has.

private struct RateLimitsEvent: Decodable {
    var type: String?
    var plan_type: String?
    var metered_limit_name: String?
    var limit_name: String?
    var plan_weight: Double?
    var rate_limits: EventLimits?
    var credits: WireCredits?
}

private struct EventLimits: Decodable {
    var primary: EventWindow?
    var secondary: EventWindow?
}

private struct EventWindow: Decodable {
    var used_percent: Double?
    var window_minutes: Int?
    var reset_at: Double?
    var reset_after_seconds: Double?

    func window(now: Date) -> RateLimitWindow? {
        RateLimitWindow.make(usedPercent: used_percent, resetAt: resetDate(at: reset_at, after: reset_after_seconds, now: now),
                             windowMinutes: window_minutes)
    }
}

private struct UsageResponse: Decodable {
    var plan_type: String?
    var rate_limit: UsageLimits?
    var credits: WireCredits?
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
        let minutes = limit_window_seconds.flatMap { $0 > 0 && $0.isFinite ? Int(($0 / 60).rounded(.up)) : nil }
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
