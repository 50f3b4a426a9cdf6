/// How much of one rate-limit window a credential may use before it stops taking new sessions.
///
/// An operator either keeps a *reserve* (for their own direct use of the account) or sets a
/// *limit*; the two are exclusive per window.
public enum UsageCapSetting: Hashable, Sendable {
    /// Keep this many percent free: the cap is `100 - max(reserve, 1)`.
    case reserve(Int)
    /// Stop at this percentage.
    case limit(Int)

    /// No reserve and no limit configured: the default reserve of 1 %, so the cap is 99 %.
    public static let unset = UsageCapSetting.reserve(0)

    public static let maximumReserve = 99
    public static let maximumLimit = 100

    /// The utilization percentage at which the credential becomes unusable.
    public var capPercent: Double {
        switch self {
        case .reserve(let reserve): Double(100 - max(reserve, 1))
        case .limit(let limit) where limit > 0: Double(limit)
        case .limit: Double(100 - 1)
        }
    }
}

/// The caps of both windows of one credential.
public struct UsageCaps: Hashable, Sendable {
    public var fiveHour: UsageCapSetting
    public var weekly: UsageCapSetting

    public init(fiveHour: UsageCapSetting = .unset, weekly: UsageCapSetting = .unset) {
        self.fiveHour = fiveHour
        self.weekly = weekly
    }

    /// External credentials are capped by their own instance; locally they may go to 100 %.
    public static let external = UsageCaps(fiveHour: .limit(100), weekly: .limit(100))

    public var fiveHourCapPercent: Double { fiveHour.capPercent }
    public var weeklyCapPercent: Double { weekly.capPercent }
}
