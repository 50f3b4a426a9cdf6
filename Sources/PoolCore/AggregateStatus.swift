public import Foundation

/// The pool's combined rate-limit status as one user sees it (§9), and the JSON of
/// `GET /ocm/v1/status` that peer instances read.
public struct AggregateStatus: Hashable, Sendable {
    public var fiveHourUtilization: Double
    public var fiveHourReset: Date?
    public var weeklyUtilization: Double
    public var weeklyReset: Date?
    /// Σ plan weights of the included credentials.
    public var planWeight: Double

    public init(fiveHourUtilization: Double, fiveHourReset: Date?, weeklyUtilization: Double, weeklyReset: Date?, planWeight: Double) {
        self.fiveHourUtilization = fiveHourUtilization
        self.fiveHourReset = fiveHourReset
        self.weeklyUtilization = weeklyUtilization
        self.weeklyReset = weeklyReset
        self.planWeight = planWeight
    }

    /// Nothing known: report the pool as full rather than invent capacity.
    public static let unknown = AggregateStatus(fiveHourUtilization: 100, fiveHourReset: nil, weeklyUtilization: 100, weeklyReset: nil, planWeight: 0)

    /// Combines credentials (already filtered for the viewer). Credentials that never reported
    /// data are left out; capped or rate-limited ones count at their recorded use.
    ///
    /// Each credential's cap is its 100 %: remaining = max(0, cap − used), and
    /// utilization = 100 − Σ(remaining·w)/Σw. A reset is the weight-averaged time until the
    /// future resets, skipping ones already past.
    public static func compute(_ credentials: [CredentialState], now: Date) -> AggregateStatus {
        var sum = Sum(now: now)
        for credential in credentials { sum.add(credential) }
        return sum.status
    }

    /// The aggregate added up one credential at a time, in one pass and without copying the
    /// credentials into arrays (it is computed for every answer).
    struct Sum {
        let now: Date
        private var totalWeight = 0.0
        private var included = 0
        private var fiveHourRemaining = 0.0, weeklyRemaining = 0.0
        private var fiveHourReset = WeightedReset(), weeklyReset = WeightedReset()

        init(now: Date) {
            self.now = now
        }

        mutating func add(_ credential: CredentialState) {
            guard credential.usage.hasData else { return }
            let weight = credential.planWeight
            included += 1
            totalWeight += weight
            fiveHourRemaining += max(0, credential.caps.fiveHourCapPercent - credential.usage.usedPercent(.fiveHour, now: now)) * weight
            weeklyRemaining += max(0, credential.caps.weeklyCapPercent - credential.usage.usedPercent(.weekly, now: now)) * weight
            fiveHourReset.add(credential.usage.resetAt(.fiveHour, now: now), weight: weight, now: now)
            weeklyReset.add(credential.usage.resetAt(.weekly, now: now), weight: weight, now: now)
        }

        var status: AggregateStatus {
            guard included > 0, totalWeight > 0 else { return .unknown }
            return AggregateStatus(
                fiveHourUtilization: clampPercent(100 - fiveHourRemaining / totalWeight),
                fiveHourReset: fiveHourReset.average(now: now),
                weeklyUtilization: clampPercent(100 - weeklyRemaining / totalWeight),
                weeklyReset: weeklyReset.average(now: now),
                planWeight: totalWeight)
        }
    }

    /// The weight-averaged time until the future resets.
    private struct WeightedReset {
        var weightedSeconds = 0.0, weights = 0.0

        mutating func add(_ reset: Date?, weight: Double, now: Date) {
            guard let reset else { return }
            weightedSeconds += reset.timeIntervalSince(now) * weight
            weights += weight
        }

        func average(now: Date) -> Date? {
            guard weights > 0 else { return nil }
            return now.addingTimeInterval(weightedSeconds / weights)
        }
    }

    private static func clampPercent(_ value: Double) -> Double {
        min(100, max(0, value))
    }

    // MARK: Wire format

    /// `{"five_hour_utilization":…,"five_hour_reset":…,"weekly_utilization":…,"weekly_reset":…,"plan_weight":…}`
    /// with resets in unix seconds (0 when unknown), keys in a fixed order.
    public var json: String {
        "{\"five_hour_utilization\":\(Self.number(fiveHourUtilization)),\"five_hour_reset\":\(Self.unix(fiveHourReset)),"
            + "\"weekly_utilization\":\(Self.number(weeklyUtilization)),\"weekly_reset\":\(Self.unix(weeklyReset)),"
            + "\"plan_weight\":\(Self.number(planWeight))}"
    }

    /// Parses the status JSON of another instance; all five fields must be present.
    public init(statusJSON data: Data) throws(StatusDecodingError) {
        guard let wire = try? JSONDecoder().decode(WireStatus.self, from: data) else { throw .invalid("not a status object") }
        guard let five = wire.five_hour_utilization, let fiveReset = wire.five_hour_reset,
              let weekly = wire.weekly_utilization, let weeklyReset = wire.weekly_reset, let weight = wire.plan_weight
        else { throw .invalid("missing one of five_hour_utilization, five_hour_reset, weekly_utilization, weekly_reset, plan_weight") }
        guard [five, fiveReset, weekly, weeklyReset, weight].allSatisfy(\.isFinite) else { throw .invalid("non-finite number") }
        self.init(fiveHourUtilization: five, fiveHourReset: RateLimitSnapshot.unixDate(fiveReset),
                  weeklyUtilization: weekly, weeklyReset: RateLimitSnapshot.unixDate(weeklyReset), planWeight: weight)
    }

    /// The same information as a snapshot, for applying a peer's status to its external credential.
    public var snapshot: RateLimitSnapshot {
        RateLimitSnapshot(
            fiveHour: RateLimitWindow(usedPercent: fiveHourUtilization, resetAt: fiveHourReset, windowMinutes: 300),
            weekly: RateLimitWindow(usedPercent: weeklyUtilization, resetAt: weeklyReset, windowMinutes: 10080),
            peerPlanWeight: planWeight > 0 ? planWeight : nil)
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func unix(_ date: Date?) -> String {
        String(Int((date?.timeIntervalSince1970 ?? 0).rounded()))
    }
}

public enum StatusDecodingError: Error, Hashable, Sendable {
    case invalid(String)
}

private struct WireStatus: Decodable {
    var five_hour_utilization: Double?
    var five_hour_reset: Double?
    var weekly_utilization: Double?
    var weekly_reset: Double?
    var plan_weight: Double?
}
