public import Foundation
public import NIOHTTP1
public import PoolCore

/// Replaces per-account rate-limit headers with the user's aggregated status (§7.5 [L]): no
/// account's own numbers, overage or credits leave the gateway.
public enum RateLimitHeaderRewriter {
    static let droppedSuffixes = [
        "-primary-used-percent", "-primary-window-minutes", "-primary-reset-at", "-primary-reset-after-seconds",
        "-secondary-used-percent", "-secondary-window-minutes", "-secondary-reset-at", "-secondary-reset-after-seconds",
        "-limit-name", "-primary-over-secondary-limit-percent",
    ]

    public static func isRateLimitHeader(_ name: String) -> Bool {
        guard RateLimitSnapshot.isExtensionHeader(name) else { return false }
        let lowered = name.lowercased()
        if lowered == "x-codex-active-limit" || lowered == "x-codex-plan-type" || lowered == "x-codex-rate-limit-reached-type"
            || lowered == "x-ocm-plan-weight" || lowered.hasPrefix("x-codex-credits-") {
            return true
        }
        return lowered.hasPrefix("x-") && droppedSuffixes.contains { lowered.hasSuffix($0) }
    }

    /// `headers` without any rate-limit header, plus the aggregate's.
    public static func rewrite(_ headers: HTTPHeaders, with status: AggregateStatus, now: Date) -> HTTPHeaders {
        var result = HTTPHeaders()
        for (name, value) in headers where !isRateLimitHeader(name) { result.add(name: name, value: value) }
        result.add(contentsOf: aggregateHeaders(status, now: now))
        return result
    }

    /// The aggregate as Codex reads it: both windows with length and reset, and the plan weight.
    public static func aggregateHeaders(_ status: AggregateStatus, now: Date) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "x-codex-primary-used-percent", value: twoDecimals(status.fiveHourUtilization))
        headers.add(name: "x-codex-primary-window-minutes", value: "300")
        if let reset = status.fiveHourReset { headers.add(name: "x-codex-primary-reset-at", value: String(Int(reset.timeIntervalSince1970.rounded()))) }
        headers.add(name: "x-codex-secondary-used-percent", value: twoDecimals(status.weeklyUtilization))
        headers.add(name: "x-codex-secondary-window-minutes", value: "10080")
        if let reset = status.weeklyReset { headers.add(name: "x-codex-secondary-reset-at", value: String(Int(reset.timeIntervalSince1970.rounded()))) }
        if status.planWeight > 0 { headers.add(name: "x-ocm-plan-weight", value: shortest(status.planWeight)) }
        return headers
    }

    /// `%.2f` without Foundation's formatter, which costs more than the rest of the rewrite.
    static func twoDecimals(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e12 else { return String(format: "%.2f", value) }
        let hundredths = Int((abs(value) * 100).rounded())
        let fraction = hundredths % 100
        return "\(value < 0 && hundredths > 0 ? "-" : "")\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func shortest(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
