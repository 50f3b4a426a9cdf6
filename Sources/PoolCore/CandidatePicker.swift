public import Foundation

/// The selection strategies over a list of usable candidates (§4.2).
public enum CandidatePicker {
    /// Hours in a week: a credential whose week resets in h hours gets 168/h times the score,
    /// because capacity it does not use before then is lost ("use it or lose it").
    static let hoursPerWeek = 168.0

    /// The least-used score: remaining weekly capacity × plan weight × reset urgency.
    public static func leastUsedScore(_ credential: CredentialState, now: Date) -> Double {
        let remaining = credential.caps.weeklyCapPercent - credential.usage.usedPercent(.weekly, now: now)
        var score = remaining * credential.planWeight
        if let reset = credential.usage.resetAt(.weekly, now: now) {
            let hours = max(reset.timeIntervalSince(now) / 3600, 1)
            score *= hoursPerWeek / hours
        }
        return score
    }

    /// The highest score; ties go to the earlier candidate in configured order.
    public static func leastUsed(_ candidates: [CredentialState], now: Date) -> CredentialState? {
        var best: (credential: CredentialState, score: Double)?
        for candidate in candidates {
            let score = leastUsedScore(candidate, now: now)
            if best == nil || score > best!.score { best = (candidate, score) }
        }
        return best?.credential
    }

    /// The first candidate at or after `start` in member order, wrapping around.
    static func roundRobin(_ candidates: [CredentialState], members: [String], start: Int) -> (CredentialState, nextStart: Int)? {
        guard !members.isEmpty else { return nil }
        let usable = Dictionary(candidates.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
        for offset in 0..<members.count {
            let index = (start + offset) % members.count
            if let candidate = usable[members[index]] { return (candidate, (index + 1) % members.count) }
        }
        return nil
    }
}

/// A small deterministic generator (SplitMix64): `random` picks are reproducible from a seed in tests.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
