public import Foundation

/// What one upstream message said about an account's rate limits at one moment.
///
/// Windows are classified by their length, never by the slot name: weekly-only plans report
/// their weekly window as "primary", and treating that as the 5-hour window would make a
/// nearly exhausted week look like a fresh 5-hour window.
public struct RateLimitSnapshot: Hashable, Sendable {
    public var fiveHour: RateLimitWindow?
    public var weekly: RateLimitWindow?
    /// `plus`, `pro`, … when the message named it.
    public var planType: String?
    /// The total plan weight a peer instance reported (`X-OCM-Plan-Weight`, `plan_weight`).
    public var peerPlanWeight: Double?
    public var credits: RateLimitCredits?
    /// Other limit families the message reported.
    public var additional: [AdditionalRateLimit] = []

    public init(fiveHour: RateLimitWindow? = nil, weekly: RateLimitWindow? = nil, planType: String? = nil,
                peerPlanWeight: Double? = nil, credits: RateLimitCredits? = nil) {
        self.fiveHour = fiveHour
        self.weekly = weekly
        self.planType = planType
        self.peerPlanWeight = peerPlanWeight
        self.credits = credits
    }

    /// Whether the message carried any usage data at all (a WebSocket 101 usually does not).
    public var hasUsageData: Bool { fiveHour != nil || weekly != nil }

    /// The limit family codexpool tracks: Codex's own metered limit.
    public static let trackedLimit = "codex"

    /// Normalizes a limit id as headers spell it: trimmed, lower case, `_` → `-`, empty → `codex`.
    static func normalizedLimitID(_ raw: String?) -> String {
        guard let raw, !raw.isEmpty else { return trackedLimit }
        // Ids arrive normalized nearly always ("codex", once a turn per WebSocket session): those
        // skip Foundation's three passes.
        if raw.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }) { return raw }
        let trimmed = raw.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "_", with: "-")
        return trimmed.isEmpty ? trackedLimit : trimmed
    }

    /// Puts up to two slot readings into the 5-hour and weekly places by window length.
    mutating func place(_ window: RateLimitWindow?, slot: Slot) {
        guard let window else { return }
        switch window.kind(defaultingTo: slot) {
        case .fiveHour where fiveHour == nil: fiveHour = window
        case .weekly where weekly == nil: weekly = window
        default: break
        }
    }

    enum Slot { case primary, secondary }
}

/// One usage window as reported.
public struct RateLimitWindow: Hashable, Sendable {
    public var usedPercent: Double
    public var resetAt: Date?
    public var windowMinutes: Int?

    public init(usedPercent: Double, resetAt: Date? = nil, windowMinutes: Int? = nil) {
        self.usedPercent = usedPercent
        self.resetAt = resetAt
        self.windowMinutes = windowMinutes
    }

    /// Windows of a day or less are the short (5-hour) window; longer ones the weekly window.
    /// Without a length, the slot decides: primary is short, secondary is weekly.
    func kind(defaultingTo slot: RateLimitSnapshot.Slot) -> WindowKind {
        if let windowMinutes, windowMinutes > 0 { return windowMinutes <= 24 * 60 ? .fiveHour : .weekly }
        return slot == .primary ? .fiveHour : .weekly
    }

    /// Builds a window from raw fields; nil when the percentage is missing or not a finite number,
    /// or when it is 0 with nothing else known (the backend's "no such window").
    static func make(usedPercent: Double?, resetAt: Date?, windowMinutes: Int?) -> RateLimitWindow? {
        guard let usedPercent, usedPercent.isFinite, usedPercent >= 0 else { return nil }
        if usedPercent == 0, resetAt == nil, windowMinutes == nil { return nil }
        return RateLimitWindow(usedPercent: usedPercent, resetAt: resetAt, windowMinutes: windowMinutes)
    }
}

public enum WindowKind: String, Hashable, Sendable {
    case fiveHour = "5h"
    case weekly
}

/// Credit balance information (informational; it does not affect selection).
public struct RateLimitCredits: Hashable, Sendable {
    public var hasCredits: Bool
    public var unlimited: Bool
    public var balance: String

    public init(hasCredits: Bool, unlimited: Bool, balance: String) {
        self.hasCredits = hasCredits
        self.unlimited = unlimited
        self.balance = balance
    }
}
