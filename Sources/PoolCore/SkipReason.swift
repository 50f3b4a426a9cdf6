public import Foundation

/// Why a credential was not picked; shown in selection errors, status and logs.
public enum SkipReason: Hashable, Sendable {
    case unavailable(UnavailableReason)
    case usagePollFailing(failures: Int, lastError: String)
    case rateLimited(until: Date)
    case upstreamRejected(until: Date)
    case capReached(WindowKind, usedPercent: Double, capPercent: Double, resetAt: Date?)
    /// API-key credentials have no subscription limits to balance.
    case apiKeyCredential
    /// The user may not use other instances' accounts (`allow_external_usage: false`).
    case externalNotAllowed
    /// An operator disabled it (admin API); its open sessions finish, new ones go elsewhere.
    case disabledByAdmin

    /// Whether waiting will make the credential usable again (as opposed to something an
    /// operator must fix); decides between "rate-limited" and "unavailable" answers.
    public var isLimit: Bool {
        switch self {
        case .rateLimited, .capReached: true
        default: false
        }
    }

    public func description(now: Date) -> String {
        switch self {
        case .unavailable(let reason):
            return reason.description
        case .usagePollFailing(let failures, let lastError):
            return "usage polling failing (\(failures) in a row: \(lastError))"
        case .rateLimited(let until):
            return "rate-limited until \(DurationText.timestamp(until)) (in \(DurationText.interval(until.timeIntervalSince(now))))"
        case .upstreamRejected(let until):
            return "rejected by the peer instance (HTTP 400); retrying after \(DurationText.timestamp(until))"
        case .capReached(let kind, let used, let cap, let reset):
            let window = kind == .fiveHour ? "5-hour" : "weekly"
            let resetText = reset.map { ", resets in \(DurationText.interval($0.timeIntervalSince(now)))" } ?? ""
            return "\(window) use \(DurationText.percent(used)) % reached its cap of \(DurationText.percent(cap)) %\(resetText)"
        case .apiKeyCredential:
            return "API-key credential (balancers use only ChatGPT-account credentials)"
        case .externalNotAllowed:
            return "external credential, and this user has allow_external_usage: false"
        case .disabledByAdmin:
            return "disabled by admin"
        }
    }
}

/// Human-readable durations, times and percentages for messages.
public enum DurationText {
    /// `45s`, `12m30s`, `3h5m`, `2d4h`.
    public static func interval(_ seconds: TimeInterval) -> String {
        let total = max(0, Int(seconds.rounded(.up)))
        let days = total / 86_400, hours = total % 86_400 / 3600, minutes = total % 3600 / 60, secs = total % 60
        if days > 0 { return "\(days)d\(hours)h" }
        if hours > 0 { return "\(hours)h\(minutes)m" }
        if minutes > 0 { return secs > 0 ? "\(minutes)m\(secs)s" : "\(minutes)m" }
        return "\(secs)s"
    }

    /// `2026-11-22 14:05:00 UTC`.
    public static func timestamp(_ date: Date) -> String {
        let components = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(components.year ?? 0)-\(two(components.month))-\(two(components.day)) \(two(components.hour)):\(two(components.minute)):\(two(components.second)) UTC"
    }

    /// `37.5`, `80`, `13.64` — at most two decimals, no trailing zeros.
    public static func percent(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        var text = String(format: "%.2f", rounded)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}
