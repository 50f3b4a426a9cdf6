import Foundation
@testable import PoolCore

/// A fixed "now" for every test: 2027-01-15 08:00:00 UTC.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)
let hour: TimeInterval = 3600

/// A credential whose state came from one usage poll at `t0`.
func credential(
    _ tag: String, kind: CredentialState.Kind = .local, plan: String? = "plus", peerWeight: Double? = nil,
    fiveHour: Double? = nil, fiveHourResetIn: TimeInterval? = nil,
    weekly: Double? = nil, weeklyResetIn: TimeInterval? = nil, caps: UsageCaps? = nil
) -> CredentialState {
    var state = CredentialState(tag: tag, kind: kind, caps: caps)
    let snapshot = RateLimitSnapshot(
        fiveHour: fiveHour.map { RateLimitWindow(usedPercent: $0, resetAt: fiveHourResetIn.map { t0 + $0 }, windowMinutes: 300) },
        weekly: weekly.map { RateLimitWindow(usedPercent: $0, resetAt: weeklyResetIn.map { t0 + $0 }, windowMinutes: 10080) },
        planType: kind == .local ? plan : nil, peerPlanWeight: peerWeight)
    if snapshot.hasUsageData || plan != nil || peerWeight != nil {
        state.usage.applyPoll(snapshot, now: t0)
    }
    return state
}

extension Result where Success == Selection, Failure == SelectionFailure {
    var tag: String? {
        if case .success(let selection) = self { return selection.tag }
        return nil
    }

    var failure: SelectionFailure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
