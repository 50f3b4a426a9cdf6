public import Foundation
import Synchronization

/// Writes history off the callers' threads: rows are collected under a lock (cheap, from any
/// event loop) and written in batches on one serial queue. A write that fails is reported and
/// its rows dropped — history becomes incomplete, requests never fail for it.
public final class HistoryRecorder: Sendable {
    public let store: HistoryStore
    private let queue = DispatchQueue(label: "codexpool.history.writes")
    private let reads = DispatchQueue(label: "codexpool.history.reads", attributes: .concurrent)
    private let pending = Mutex<Pending>(Pending())
    private let onFailure: @Sendable (String) -> Void
    /// How long rows wait to be written together.
    private let batchDelay: DispatchTimeInterval

    public init(store: HistoryStore, batchDelay: DispatchTimeInterval = .milliseconds(200), onFailure: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.batchDelay = batchDelay
        self.onFailure = onFailure
    }

    private struct Pending {
        var records: [RequestRecord] = []
        var samples: [MetricSample] = []
        var ledger: [UsageLedgerEntry] = []
        var scheduled = false
    }

    public func record(_ record: RequestRecord) {
        enqueue { $0.records.append(record) }
    }

    /// A request's row and what it adds to its user's ledger, written together.
    public func record(_ record: RequestRecord, ledger entry: UsageLedgerEntry) {
        enqueue { pending in
            pending.records.append(record)
            pending.ledger.append(entry)
        }
    }

    public func record(_ samples: [MetricSample]) {
        enqueue { $0.samples += samples }
    }

    private func enqueue(_ add: (inout Pending) -> Void) {
        let schedule = pending.withLock { state -> Bool in
            add(&state)
            // A runaway backlog (a disk that stalls) is cut rather than grown without bound.
            if state.records.count > 100_000 { state.records.removeFirst(state.records.count - 100_000) }
            if state.ledger.count > 100_000 { state.ledger.removeFirst(state.ledger.count - 100_000) }
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { queue.asyncAfter(deadline: .now() + batchDelay) { [self] in writePending() } }
    }

    /// Writes what is pending now and waits for it (tests, shutdown).
    public func flush() {
        queue.sync { writePending() }
    }

    /// Work on the history's write queue (maintenance, admin changes), in order with the writes.
    public func write<Result: Sendable>(_ work: @escaping @Sendable (HistoryStore) throws -> Result,
                                        completion: @escaping @Sendable (Swift.Result<Result, any Error>) -> Void) {
        queue.async { [store] in completion(Swift.Result { try work(store) }) }
    }

    /// A read on a background queue (SQLite in WAL mode reads beside the writer).
    public func read<Result: Sendable>(_ work: @escaping @Sendable (HistoryStore) throws -> Result,
                                       completion: @escaping @Sendable (Swift.Result<Result, any Error>) -> Void) {
        reads.async { [store] in completion(Swift.Result { try work(store) }) }
    }

    private func writePending() {
        let batch = pending.withLock { state in
            defer { state = Pending() }
            return state
        }
        let records = batch.records
        do {
            try store.insert(records, ledger: batch.ledger)
            try store.insertSamples(batch.samples)
        } catch {
            onFailure("history write of \(records.count) requests failed: \(error)")
        }
    }
}
