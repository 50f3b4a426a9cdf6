public import NIOHTTP1

/// The rate-limit state of one simulated Codex account, rendered the way the real backend does.
public struct SimulatedRateLimits: Hashable, Sendable {
    /// One usage window (5 hours or one week).
    public struct Window: Hashable, Sendable {
        public var usedPercent: Double
        public var windowMinutes: Int
        /// Unix seconds.
        public var resetAt: Int

        public init(usedPercent: Double, windowMinutes: Int, resetAt: Int) {
            self.usedPercent = usedPercent
            self.windowMinutes = windowMinutes
            self.resetAt = resetAt
        }
    }

    /// Another limit family the account reports (a per-model limit, codex-wire-2026.md §4).
    public struct ExtraLimit: Hashable, Sendable {
        /// As headers spell it: `codex-bengalfox`.
        public var id: String
        public var name: String
        public var fiveHour: Window

        public init(id: String, name: String, fiveHour: Window) {
            self.id = id
            self.name = name
            self.fiveHour = fiveHour
        }
    }

    public var planType: String
    public var extraLimits: [ExtraLimit] = []
    /// The 5-hour window; weekly-only plans have none and report the week as primary.
    public var fiveHour: Window?
    public var weekly: Window

    public init(planType: String, fiveHour: Window?, weekly: Window) {
        self.planType = planType
        self.fiveHour = fiveHour
        self.weekly = weekly
    }

    /// True when any window is used up, which makes the backend answer 429.
    public var limitReached: Bool {
        weekly.usedPercent >= 100 || (fiveHour?.usedPercent ?? 0) >= 100
    }

    /// The `x-codex-*` headers the backend attaches to responses, upgrades and 429s
    /// (codex-client.md §3.3). The weekly window is "secondary" only when a 5-hour window exists.
    public func headers(now: Int) -> HTTPHeaders {
        var headers = HTTPHeaders()
        let windows: [(String, Window)] = if let fiveHour { [("primary", fiveHour), ("secondary", weekly)] } else { [("primary", weekly)] }
        for (slot, window) in windows {
            headers.add(name: "x-codex-\(slot)-used-percent", value: Self.format(window.usedPercent))
            headers.add(name: "x-codex-\(slot)-window-minutes", value: String(window.windowMinutes))
            headers.add(name: "x-codex-\(slot)-reset-at", value: String(window.resetAt))
            headers.add(name: "x-codex-\(slot)-reset-after-seconds", value: String(max(0, window.resetAt - now)))
        }
        for extra in extraLimits {
            headers.add(name: "x-\(extra.id)-primary-used-percent", value: Self.format(extra.fiveHour.usedPercent))
            headers.add(name: "x-\(extra.id)-primary-window-minutes", value: String(extra.fiveHour.windowMinutes))
            headers.add(name: "x-\(extra.id)-primary-reset-at", value: String(extra.fiveHour.resetAt))
            headers.add(name: "x-\(extra.id)-limit-name", value: extra.name)
        }
        headers.add(name: "x-codex-plan-type", value: planType)
        headers.add(name: "x-codex-active-limit", value: "codex")
        headers.add(name: "x-codex-credits-has-credits", value: "False")
        headers.add(name: "x-codex-credits-unlimited", value: "False")
        headers.add(name: "x-codex-credits-balance", value: "0")
        return headers
    }

    /// Percentages as the backend prints them: `12.5`, `40` (no trailing `.0`).
    static func format(_ percent: Double) -> String {
        percent == percent.rounded() && abs(percent) < 1e15 ? String(Int(percent)) : String(percent)
    }
}
