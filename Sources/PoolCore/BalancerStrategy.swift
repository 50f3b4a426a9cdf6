/// How a balancer chooses among its usable member credentials.
public enum BalancerStrategy: String, Hashable, Sendable, CaseIterable {
    /// The most remaining weekly capacity, weighted by plan and by how soon the week resets.
    case leastUsed = "least-used"
    /// The next usable member after the one picked last.
    case roundRobin = "round-robin"
    /// Any usable member, uniformly.
    case random
    /// The first usable member in configured order; never sticky, never rebalanced.
    case fallback

    /// The default when a balancer names no strategy.
    public static let `default` = BalancerStrategy.leastUsed

    /// The names as an operator may write them, for error messages.
    public static let expectedNames = "least-used, round-robin, random or fallback"

    /// Accepts both `least-used` and `least_used` spellings (the reference's documentation used
    /// underscores while its validator only took hyphens).
    public init?(configurationName: String) {
        let normalized = String(configurationName.lowercased().map { $0 == "_" ? "-" : $0 })
        self.init(rawValue: normalized)
    }
}
