public import Foundation
import GRDB

/// One reading of a metric at one time.
public struct MetricSample: Hashable, Sendable {
    public var metric: HistoryMetric
    /// Unix seconds: the start of the interval it covers.
    public var time: Double
    public var value: Double

    public init(metric: HistoryMetric, time: Double, value: Double) {
        self.metric = metric
        self.time = time
        self.value = value
    }
}

/// What the server samples every 5 seconds. Counts are per interval (summed when downsampled);
/// levels are as seen at the sample (averaged).
public enum HistoryMetric: String, Sendable, CaseIterable {
    case requests
    case failures
    case tokens
    case timeToFirstByteMilliseconds = "ttfb_ms"
    case inFlight = "in_flight"
    case webSocketSessions = "websocket_sessions"

    public var isCount: Bool { self == .requests || self == .failures || self == .tokens }
}

/// A sample resolution.
public enum MetricStep: String, Sendable {
    case fiveSeconds = "5s"
    case minute = "1m"

    var table: String { self == .fiveSeconds ? "metric_samples_5s" : "metric_samples_1m" }
    public var seconds: Double { self == .fiveSeconds ? 5 : 60 }
}

extension HistoryStore {
    public func insertSamples(_ samples: [MetricSample]) throws {
        guard !samples.isEmpty else { return }
        try database.write { db in
            for sample in samples {
                try db.execute(sql: "INSERT OR REPLACE INTO metric_samples_5s (time, metric, value) VALUES (?, ?, ?)",
                               arguments: [sample.time, sample.metric.rawValue, sample.value])
            }
        }
    }

    public func series(_ metric: HistoryMetric, step: MetricStep, since: Date, until: Date) throws -> [MetricSample] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT time, value FROM \(step.table) WHERE metric = ? AND time >= ? AND time < ? ORDER BY time",
                             arguments: [metric.rawValue, since.timeIntervalSince1970, until.timeIntervalSince1970])
                .map { MetricSample(metric: metric, time: $0["time"], value: $0["value"]) }
        }
    }

    /// Folds finished minutes of 5-second samples into 1-minute ones and drops what is past its
    /// retention. Safe to repeat: a minute is recomputed from its samples, not added twice.
    public func maintain(now: Date, requestRetention: TimeInterval, detailRetention: TimeInterval, summaryRetention: TimeInterval) throws {
        let finishedMinutes = (now.timeIntervalSince1970 / 60).rounded(.down) * 60
        try database.write { db in
            let lastSummarized = try Double.fetchOne(db, sql: "SELECT MAX(time) FROM metric_samples_1m") ?? 0
            for metric in HistoryMetric.allCases {
                let fold = metric.isCount ? "SUM(value)" : "AVG(value)"
                try db.execute(sql: """
                    INSERT OR REPLACE INTO metric_samples_1m (time, metric, value)
                    SELECT CAST(time / 60 AS INTEGER) * 60.0 AS minute, metric, \(fold) FROM metric_samples_5s
                    WHERE metric = ? AND time >= ? AND time < ? GROUP BY minute
                    """, arguments: [metric.rawValue, lastSummarized, finishedMinutes])
            }
            let seconds = now.timeIntervalSince1970
            try db.execute(sql: "DELETE FROM metric_samples_5s WHERE time < ?", arguments: [min(seconds - detailRetention, finishedMinutes)])
            try db.execute(sql: "DELETE FROM metric_samples_1m WHERE time < ?", arguments: [seconds - summaryRetention])
            try db.execute(sql: "DELETE FROM requests WHERE time < ?", arguments: [seconds - requestRetention])
        }
    }
}
