import Configuration
import Foundation
import Logging
import NIOCore
import PoolCore
import Storage
import Synchronization

/// The gateway's side of the history (DESIGN.md "State, history and the admin surface"): every
/// finished request and turn becomes a row, the in-memory counters become samples every 5 s, and
/// the store is downsampled and pruned every minute — all written off the event loops. When the
/// store cannot be opened or written, the gateway serves on with an error log and
/// `codexpool_history_write_failures_total`.
final class RequestHistory: Sendable {
    let recorder: HistoryRecorder
    private let retention: StorageConfiguration.Retention
    private let clock: any PoolClock
    private let interval = Mutex(IntervalCounts())
    private let tasks = Mutex<[RepeatedTask]>([])
    static let sampleInterval: TimeAmount = .seconds(5)
    static let maintenanceInterval: TimeAmount = .seconds(60)

    /// What happened since the last sample.
    private struct IntervalCounts {
        var requests = 0
        var failures = 0
        var tokens = 0
        var firstByteMilliseconds = 0.0
        var firstBytes = 0
    }

    private init(recorder: HistoryRecorder, retention: StorageConfiguration.Retention, clock: any PoolClock) {
        self.recorder = recorder
        self.retention = retention
        self.clock = clock
    }

    /// The history of `configuration`, or nil when it is off or cannot be opened (then logged).
    static func open(_ configuration: StorageConfiguration, clock: any PoolClock, metrics: GatewayMetrics, logger: Logger) -> RequestHistory? {
        guard configuration.enabled else { return nil }
        do {
            let store = try HistoryStore(path: configuration.path)
            let recorder = HistoryRecorder(store: store) { message in
                metrics.recordHistoryWriteFailure()
                logger.error("\(message); history is incomplete")
            }
            return RequestHistory(recorder: recorder, retention: configuration.retention, clock: clock)
        } catch {
            metrics.recordHistoryWriteFailure()
            logger.error("history unavailable: \(error); serving without it")
            return nil
        }
    }

    /// The history row of a finished request.
    static func row(_ finished: FinishedRequest, costUSD: Double, time: Date) -> RequestRecord {
        let usage = finished.usage
        return RequestRecord(
            time: time, requestID: finished.requestID, user: finished.user.name, credential: finished.credential,
            connectorCredential: finished.connectorCredential, model: usage?.model ?? finished.model,
            transport: finished.transport.rawValue, route: finished.route, outcome: finished.outcome.rawValue, status: finished.status,
            timeToFirstByteMilliseconds: finished.timeToFirstByte.map { Double($0.nanoseconds) / 1e6 },
            durationMilliseconds: Double(finished.duration.nanoseconds) / 1e6, inputTokens: usage?.inputTokens ?? 0,
            cachedInputTokens: usage?.cachedTokens ?? 0, outputTokens: usage?.outputTokens ?? 0, reasoningTokens: usage?.reasoningTokens ?? 0,
            costUSD: costUSD, failovers: finished.failovers, error: finished.error)
    }

    func record(_ row: RequestRecord, finished: FinishedRequest, ledger: UsageLedgerEntry? = nil) {
        let usage = finished.usage
        interval.withLock { counts in
            counts.requests += 1
            if finished.outcome != .completed { counts.failures += 1 }
            counts.tokens += (usage?.inputTokens ?? 0) + (usage?.outputTokens ?? 0)
            if let ttfb = row.timeToFirstByteMilliseconds {
                counts.firstByteMilliseconds += ttfb
                counts.firstBytes += 1
            }
        }
        if let ledger { recorder.record(row, ledger: ledger) } else { recorder.record(row) }
    }

    /// Starts sampling and maintenance on `eventLoop`; `levels` reads the gauges (in flight,
    /// open WebSocket sessions) at each sample.
    func start(on eventLoop: any EventLoop, levels: @escaping @Sendable () -> (inFlight: Double, webSockets: Double)) {
        let sampler = eventLoop.scheduleRepeatedTask(initialDelay: Self.sampleInterval, delay: Self.sampleInterval) { [self] _ in
            sample(levels())
        }
        let maintenance = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: Self.maintenanceInterval) { [self] _ in
            maintain()
        }
        tasks.withLock { $0 = [sampler, maintenance] }
    }

    /// Writes the counts since the last sample and the current levels, stamped with the start of
    /// their 5-second slot.
    func sample(_ levels: (inFlight: Double, webSockets: Double)) {
        let counts = interval.withLock { counts in
            defer { counts = IntervalCounts() }
            return counts
        }
        let time = (clock.now().timeIntervalSince1970 / 5).rounded(.down) * 5
        var samples = [
            MetricSample(metric: .requests, time: time, value: Double(counts.requests)),
            MetricSample(metric: .failures, time: time, value: Double(counts.failures)),
            MetricSample(metric: .tokens, time: time, value: Double(counts.tokens)),
            MetricSample(metric: .inFlight, time: time, value: levels.inFlight),
            MetricSample(metric: .webSocketSessions, time: time, value: levels.webSockets),
        ]
        if counts.firstBytes > 0 {
            samples.append(MetricSample(metric: .timeToFirstByteMilliseconds, time: time, value: counts.firstByteMilliseconds / Double(counts.firstBytes)))
        }
        recorder.record(samples)
    }

    func maintain() {
        let now = clock.now()
        let retention = retention
        recorder.write({ store in
            try store.maintain(now: now, requestRetention: retention.requests, detailRetention: retention.detail, summaryRetention: retention.summary)
            try store.pruneLedger(beforeDay: CalendarWindow.dayNumber(now) - UserUsageLedger.daysKept)
        }, completion: { _ in })
    }

    /// Stops sampling and writes what is pending.
    func stop() {
        tasks.withLock { tasks in
            tasks.forEach { $0.cancel() }
            tasks.removeAll()
        }
        recorder.flush()
    }
}
