public import Foundation
import Synchronization

/// Token prices per model family and service tier (§10.4), loaded from `Resources/pricing.json`,
/// the one place to update when OpenAI changes its prices.
public struct PricingTable: Sendable {
    /// USD per million tokens.
    public struct Price: Hashable, Sendable {
        public var input: Double
        public var output: Double
        public var cachedInput: Double

        init(_ values: [Double]) {
            input = values.count > 0 ? values[0] : 0
            output = values.count > 1 ? values[1] : 0
            cachedInput = values.count > 2 ? values[2] : 0
        }
    }

    struct Entry: Sendable {
        var families: [String]
        var exact: Bool
        var price: Price
        var premium: Price?

        /// The family this entry prices the model under, if any.
        func family(of model: String) -> String? {
            families.first { family in
                model == family || (!exact && model.hasPrefix(family + "-"))
            }
        }
    }

    let tiers: [String: [Entry]]
    let fallback: Price
    /// Entries already looked up, by tier and model: every answer is priced, and finding a
    /// family is string work the same few models would otherwise repeat.
    private let lookups = EntryMemo()
    public let standardContextWindow: Int
    public let premiumContextWindow: Int

    /// The table shipped with codexpool.
    public static let bundled: PricingTable = {
        do {
            return try PricingTable(json: Data(PackageResources.pricing_json))
        } catch {
            // The file is part of the build and covered by tests; a broken one must not ship.
            preconditionFailure("Resources/pricing.json is invalid: \(error)")
        }
    }()

    public init(json: Data) throws {
        let file = try JSONDecoder().decode(PricingFile.self, from: json)
        fallback = Price(file.fallback)
        standardContextWindow = file.standard_context_window
        premiumContextWindow = file.premium_context_window
        tiers = file.tiers.mapValues { entries in
            entries.map { Entry(families: $0.families, exact: $0.exact ?? false, price: Price($0.price), premium: $0.premium.map(Price.init)) }
        }
    }

    /// Service tiers as recorded: `flex` and `priority` are kept, everything else is `default`.
    public static func normalizedTier(_ tier: String?) -> String {
        switch tier {
        case nil, "", "default", "auto": return "default"
        case "flex": return "flex"
        case "priority": return "priority"
        default: break
        }
        let lowered = (tier ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        return lowered == "flex" || lowered == "priority" ? lowered : "default"
    }

    /// The context window a request counts under: premium only for long inputs on models that price them.
    public func contextWindow(model: String, tier: String, inputTokens: Int) -> Int {
        guard inputTokens > standardContextWindow else { return standardContextWindow }
        return entry(model: model, tier: tier)?.premium != nil ? premiumContextWindow : standardContextWindow
    }

    /// The price for a model in a tier and context window.
    public func price(model: String, tier: String, contextWindow: Int) -> Price {
        guard let entry = entry(model: model, tier: tier) else { return fallback }
        if contextWindow >= premiumContextWindow, let premium = entry.premium { return premium }
        return entry.price
    }

    /// What one answer cost at list prices, unrounded (its input length picks the context window).
    public func listCost(model: String, serviceTier: String?, inputTokens: Int, cachedTokens: Int, outputTokens: Int) -> Double {
        let tier = Self.normalizedTier(serviceTier)
        let price = price(model: model, tier: tier, contextWindow: contextWindow(model: model, tier: tier, inputTokens: inputTokens))
        let uncached = max(0, inputTokens - cachedTokens)
        return (Double(uncached) * price.input + Double(outputTokens) * price.output + Double(cachedTokens) * price.cachedInput) / 1e6
    }

    /// `((input − cached) · in + output · out + cached · cachedIn) / 1e6`, rounded to cents.
    public func cost(_ totals: UsageTotals, model: String, tier: String, contextWindow: Int) -> Double {
        let price = price(model: model, tier: tier, contextWindow: contextWindow)
        let uncached = Double(max(0, totals.inputTokens - totals.cachedTokens))
        let raw = (uncached * price.input + Double(totals.outputTokens) * price.output + Double(totals.cachedTokens) * price.cachedInput) / 1_000_000
        return Self.roundToCents(raw)
    }

    static func roundToCents(_ value: Double) -> Double {
        (value * 100).rounded(.toNearestOrAwayFromZero) / 100
    }

    /// The matching entry. The family is identified in the standard table (first match in its
    /// order, trying the normalized name second); the tier's row for that family is used when it
    /// has one, the standard row otherwise.
    private func entry(model: String, tier: String) -> Entry? {
        lookups.entry(tier: tier, model: model) { findEntry(model: model, tier: tier) }
    }

    private func findEntry(model: String, tier: String) -> Entry? {
        guard let standard = tiers["standard"] else { return nil }
        for name in [model, Self.normalizedModel(model)].compactMap({ $0 }) {
            for entry in standard {
                guard let family = entry.family(of: name) else { continue }
                let tierName = tier == "default" ? "standard" : tier
                return tiers[tierName]?.first { $0.families.contains(family) } ?? entry
            }
        }
        return nil
    }

    /// Maps an unknown `gpt-5.x-…` name to the family it is priced like.
    static func normalizedModel(_ model: String) -> String? {
        guard model.hasPrefix("gpt-5.") else { return nil }
        let rules: [(String, String)] = [
            ("-codex-mini", "gpt-5.1-codex-mini"), ("-codex-max", "gpt-5.1-codex-max"), ("-codex", "gpt-5.3-codex"),
            ("-chat-latest", "gpt-5.2-chat-latest"), ("-pro", "gpt-5.4-pro"), ("-mini", "gpt-5-mini"), ("-nano", "gpt-5-nano"),
        ]
        return rules.first { model.contains($0.0) }?.1 ?? "gpt-5.4"
    }
}

/// Looked-up entries; bounded, since model names come from upstream answers.
private final class EntryMemo: Sendable {
    private let entries = Mutex<[String: [String: PricingTable.Entry?]]>([:])

    func entry(tier: String, model: String, find: () -> PricingTable.Entry?) -> PricingTable.Entry? {
        if let known = entries.withLock({ $0[tier]?[model] }) { return known }
        let found = find()
        entries.withLock { entries in
            if entries[tier, default: [:]].count >= 256 { entries[tier] = [:] }
            entries[tier, default: [:]][model] = .some(found)
        }
        return found
    }
}

private struct PricingFile: Decodable {
    struct Entry: Decodable {
        var families: [String]
        var exact: Bool?
        var price: [Double]
        var premium: [Double]?
    }

    var fallback: [Double]
    var standard_context_window: Int
    var premium_context_window: Int
    var tiers: [String: [Entry]]
}
