/// What one user may use (`users[].limits`); any subset. Counted per calendar window in UTC:
/// a day from midnight, a week from Monday midnight, a month from the 1st.
public struct UserLimits: Hashable, Sendable {
    public var requestsPerDay: Int?
    public var tokensPerDay: Int?
    public var tokensPerWeek: Int?
    /// US dollars at list prices (the pricing table), like the usage reports.
    public var costPerDay: Double?
    public var costPerWeek: Double?
    public var costPerMonth: Double?
    /// Sessions open at once: WebSocket connections and HTTP requests under way, one per
    /// session id (requests without one count one each).
    public var maxConcurrentSessions: Int?

    public init(requestsPerDay: Int? = nil, tokensPerDay: Int? = nil, tokensPerWeek: Int? = nil, costPerDay: Double? = nil,
                costPerWeek: Double? = nil, costPerMonth: Double? = nil, maxConcurrentSessions: Int? = nil) {
        self.requestsPerDay = requestsPerDay
        self.tokensPerDay = tokensPerDay
        self.tokensPerWeek = tokensPerWeek
        self.costPerDay = costPerDay
        self.costPerWeek = costPerWeek
        self.costPerMonth = costPerMonth
        self.maxConcurrentSessions = maxConcurrentSessions
    }

    public var isEmpty: Bool { self == UserLimits() }

    /// Each limit on use, with its window and the measure it counts, in the order they are reported.
    public var ledgerLimits: [(kind: UserLimitKind, value: Double)] {
        let all: [(UserLimitKind, Double?)] = [
            (.requestsPerDay, requestsPerDay.map(Double.init)), (.tokensPerDay, tokensPerDay.map(Double.init)),
            (.tokensPerWeek, tokensPerWeek.map(Double.init)), (.costPerDay, costPerDay), (.costPerWeek, costPerWeek), (.costPerMonth, costPerMonth),
        ]
        return all.compactMap { kind, value in value.map { (kind, $0) } }
    }
}

/// One limit on use: a measure counted over a calendar window.
public enum UserLimitKind: String, Hashable, Sendable, CaseIterable {
    case requestsPerDay = "requests_per_day"
    case tokensPerDay = "tokens_per_day"
    case tokensPerWeek = "tokens_per_week"
    case costPerDay = "cost_per_day"
    case costPerWeek = "cost_per_week"
    case costPerMonth = "cost_per_month"

    public var window: CalendarWindow {
        switch self {
        case .requestsPerDay, .tokensPerDay, .costPerDay: .day
        case .tokensPerWeek, .costPerWeek: .week
        case .costPerMonth: .month
        }
    }

    /// This measure of a window's use.
    public func measure(_ use: UserUse) -> Double {
        switch self {
        case .requestsPerDay: Double(use.requests)
        case .tokensPerDay, .tokensPerWeek: Double(use.tokens)
        case .costPerDay, .costPerWeek, .costPerMonth: use.costUSD
        }
    }
}

/// What a user used in some span: requests and turns, tokens (input + output), cost.
public struct UserUse: Hashable, Sendable {
    public var requests: Int
    public var tokens: Int
    public var costUSD: Double

    public init(requests: Int = 0, tokens: Int = 0, costUSD: Double = 0) {
        self.requests = requests
        self.tokens = tokens
        self.costUSD = costUSD
    }

    public static func + (lhs: UserUse, rhs: UserUse) -> UserUse {
        UserUse(requests: lhs.requests + rhs.requests, tokens: lhs.tokens + rhs.tokens, costUSD: lhs.costUSD + rhs.costUSD)
    }
}
