public import Foundation

/// One finished request's token usage, recorded against the credential that served it.
public struct UsageRecord: Hashable, Sendable {
    public var model: String
    public var serviceTier: String?
    public var inputTokens: Int
    /// Part of `inputTokens` served from the prompt cache.
    public var cachedTokens: Int
    public var outputTokens: Int
    /// The authenticated user; nil when the instance has no users.
    public var user: String?
    /// Start of the account's weekly window (from the rate-limit headers), for weekly summaries.
    public var weekStart: Date?
    public var time: Date

    public init(model: String, serviceTier: String? = nil, inputTokens: Int, cachedTokens: Int = 0, outputTokens: Int,
                user: String? = nil, weekStart: Date? = nil, time: Date) {
        self.model = model
        self.serviceTier = serviceTier
        self.inputTokens = inputTokens
        self.cachedTokens = cachedTokens
        self.outputTokens = outputTokens
        self.user = user
        self.weekStart = weekStart
        self.time = time
    }
}

public struct UsageTotals: Hashable, Sendable {
    public var requestCount = 0
    public var inputTokens = 0
    public var outputTokens = 0
    public var cachedTokens = 0

    public init(requestCount: Int = 0, inputTokens: Int = 0, outputTokens: Int = 0, cachedTokens: Int = 0) {
        self.requestCount = requestCount
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedTokens = cachedTokens
    }

    mutating func add(_ record: UsageRecord) {
        requestCount += 1
        inputTokens += record.inputTokens
        outputTokens += record.outputTokens
        cachedTokens += record.cachedTokens
    }
}

/// Per-credential usage statistics (§10): requests and tokens per model, tier, context window,
/// week and user, with costs, in the reference's `usages_path` file format.
public struct UsageStatistics: Hashable, Sendable {
    public struct Key: Hashable, Sendable, Comparable {
        public var model: String
        public var serviceTier: String
        public var contextWindow: Int
        /// 0 when the week is unknown.
        public var weekStartUnix: Int64

        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.weekStartUnix, lhs.model, lhs.serviceTier, lhs.contextWindow) < (rhs.weekStartUnix, rhs.model, rhs.serviceTier, rhs.contextWindow)
        }
    }

    public struct Combination: Hashable, Sendable {
        public var total = UsageTotals()
        public var byUser: [String: UsageTotals] = [:]
    }

    public internal(set) var combinations: [Key: Combination] = [:]
    public internal(set) var lastUpdated: Date?
    let pricing: PricingTable

    public init(pricing: PricingTable = .bundled) {
        self.pricing = pricing
    }

    public static func == (lhs: UsageStatistics, rhs: UsageStatistics) -> Bool {
        lhs.combinations == rhs.combinations && lhs.lastUpdated == rhs.lastUpdated
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(combinations)
        hasher.combine(lastUpdated)
    }

    /// Adds a record; records without tokens or without a model are not usage and are ignored.
    /// - Returns: whether the record counted.
    @discardableResult
    public mutating func record(_ record: UsageRecord) -> Bool {
        let model = record.model.trimmingCharacters(in: .whitespaces)
        guard !model.isEmpty, record.inputTokens > 0 || record.outputTokens > 0,
              record.inputTokens >= 0, record.outputTokens >= 0, record.cachedTokens >= 0 else { return false }
        let tier = PricingTable.normalizedTier(record.serviceTier)
        let key = Key(model: model, serviceTier: tier,
                      contextWindow: pricing.contextWindow(model: model, tier: tier, inputTokens: record.inputTokens),
                      weekStartUnix: record.weekStart.map { Int64($0.timeIntervalSince1970.rounded()) } ?? 0)
        var combination = combinations[key] ?? Combination()
        combination.total.add(record)
        if let user = record.user, !user.isEmpty { combination.byUser[user, default: UsageTotals()].add(record) }
        combinations[key] = combination
        lastUpdated = record.time
        return true
    }

    public func cost(of totals: UsageTotals, key: Key) -> Double {
        pricing.cost(totals, model: key.model, tier: key.serviceTier, contextWindow: key.contextWindow)
    }
}
