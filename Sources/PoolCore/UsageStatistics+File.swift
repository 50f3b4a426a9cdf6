public import Foundation

extension UsageStatistics {
    /// The file as written: `last_updated`, derived `costs`, and every combination (§10.5).
    /// Week keys and `last_updated` use `timeZone` (the server's local zone in production).
    public func fileData(timeZone: TimeZone = .current) -> Data {
        var totalCost = 0.0
        var byUser: [String: Double] = [:]
        var byWeek: [String: Double] = [:]
        var byUserAndWeek: [String: [String: Double]] = [:]
        var combinationsJSON: [JSONValue] = []
        for key in combinations.keys.sorted() {
            let combination = combinations[key]!
            let totalCostOfCombination = cost(of: combination.total, key: key)
            totalCost += totalCostOfCombination
            let week = key.weekStartUnix > 0 ? Self.weekKey(Date(timeIntervalSince1970: TimeInterval(key.weekStartUnix)), timeZone: timeZone) : nil
            if let week { byWeek[week, default: 0] += totalCostOfCombination }
            var usersJSON: [String: JSONValue] = [:]
            for (user, totals) in combination.byUser {
                let userCost = cost(of: totals, key: key)
                byUser[user, default: 0] += userCost
                if let week { byUserAndWeek[user, default: [:]][week, default: 0] += userCost }
                usersJSON[user] = Self.totalsJSON(totals, cost: userCost)
            }
            var object: [String: JSONValue] = [
                "model": .string(key.model), "context_window": .integer(Int64(key.contextWindow)),
                "total": Self.totalsJSON(combination.total, cost: totalCostOfCombination), "by_user": .object(usersJSON),
            ]
            if key.serviceTier != "default" { object["service_tier"] = .string(key.serviceTier) }
            if key.weekStartUnix > 0 { object["week_start_unix"] = .integer(key.weekStartUnix) }
            combinationsJSON.append(.object(object))
        }
        var costs: [String: JSONValue] = [
            "total_usd": .number(PricingTable.roundToCents(totalCost)),
            "by_user": .object(byUser.mapValues { .number(PricingTable.roundToCents($0)) }),
        ]
        if !byWeek.isEmpty { costs["by_week"] = .object(byWeek.mapValues { .number(PricingTable.roundToCents($0)) }) }
        if !byUserAndWeek.isEmpty {
            costs["by_user_and_week"] = .object(byUserAndWeek.mapValues { .object($0.mapValues { .number(PricingTable.roundToCents($0)) }) })
        }
        var document: [String: JSONValue] = ["costs": .object(costs), "combinations": .array(combinationsJSON)]
        if let lastUpdated { document["last_updated"] = .string(Self.localTimestamp(lastUpdated, timeZone: timeZone)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(JSONValue.object(document))) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Reads a saved file: `last_updated` and the combinations; costs are recomputed from the
    /// current price table. Legacy `prompt_tokens`/`completion_tokens` fill in missing counts.
    public init(fileData data: Data, pricing: PricingTable = .bundled) throws {
        self.init(pricing: pricing)
        let file = try JSONDecoder().decode(UsageFile.self, from: data)
        lastUpdated = file.last_updated.flatMap(CodexAuthFile.parseTimestamp)
        for entry in file.combinations ?? [] {
            guard let model = entry.model, !model.isEmpty else { continue }
            let window = (entry.context_window ?? 0) > 0 ? entry.context_window! : pricing.standardContextWindow
            let key = Key(model: model, serviceTier: PricingTable.normalizedTier(entry.service_tier), contextWindow: window,
                          weekStartUnix: max(0, entry.week_start_unix ?? 0))
            var combination = combinations[key] ?? Combination()
            combination.total = Self.merge(combination.total, entry.total?.totals)
            for (user, totals) in entry.by_user ?? [:] {
                combination.byUser[user] = Self.merge(combination.byUser[user] ?? UsageTotals(), totals.totals)
            }
            combinations[key] = combination
        }
    }

    /// `2026-03-09 08:00:00 UTC+8` (or `UTC+5:30`, `UTC+0`).
    static func weekKey(_ date: Date, timeZone: TimeZone) -> String {
        let components = Calendar(identifier: .gregorian).dateComponents(in: timeZone, from: date)
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        let offset = timeZone.secondsFromGMT(for: date)
        let sign = offset < 0 ? "-" : "+"
        let hours = abs(offset) / 3600, minutes = abs(offset) % 3600 / 60
        let zone = minutes == 0 ? "UTC\(sign)\(hours)" : "UTC\(sign)\(hours):\(two(minutes))"
        return "\(components.year ?? 0)-\(two(components.month))-\(two(components.day)) "
            + "\(two(components.hour)):\(two(components.minute)):\(two(components.second)) \(zone)"
    }

    /// The week key, exposed for tests of the time-zone formatting.
    public static func weekKeyForTesting(_ date: Date, timeZone: TimeZone) -> String {
        weekKey(date, timeZone: timeZone)
    }

    static func localTimestamp(_ date: Date, timeZone: TimeZone) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = timeZone
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    private static func totalsJSON(_ totals: UsageTotals, cost: Double) -> JSONValue {
        .object([
            "request_count": .integer(Int64(totals.requestCount)), "input_tokens": .integer(Int64(totals.inputTokens)),
            "output_tokens": .integer(Int64(totals.outputTokens)), "cached_tokens": .integer(Int64(totals.cachedTokens)),
            "cost_usd": .number(cost),
        ])
    }

    private static func merge(_ base: UsageTotals, _ extra: UsageTotals?) -> UsageTotals {
        guard let extra else { return base }
        return UsageTotals(requestCount: base.requestCount + extra.requestCount, inputTokens: base.inputTokens + extra.inputTokens,
                           outputTokens: base.outputTokens + extra.outputTokens, cachedTokens: base.cachedTokens + extra.cachedTokens)
    }
}

private struct UsageFile: Decodable {
    struct Entry: Decodable {
        var model: String?
        var service_tier: String?
        var context_window: Int?
        var week_start_unix: Int64?
        var total: Totals?
        var by_user: [String: Totals]?
    }

    struct Totals: Decodable {
        var request_count: Int?
        var input_tokens: Int?
        var output_tokens: Int?
        var cached_tokens: Int?
        var prompt_tokens: Int?
        var completion_tokens: Int?

        var totals: UsageTotals {
            let input = input_tokens ?? 0, output = output_tokens ?? 0
            return UsageTotals(requestCount: max(0, request_count ?? 0), inputTokens: max(0, input == 0 ? prompt_tokens ?? 0 : input),
                               outputTokens: max(0, output == 0 ? completion_tokens ?? 0 : output), cachedTokens: max(0, cached_tokens ?? 0))
        }
    }

    var last_updated: String?
    var combinations: [Entry]?
}
