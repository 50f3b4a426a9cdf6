public import Foundation

/// When to write a statistics file: at most once a minute while records arrive, and on shutdown.
public struct SaveThrottle: Hashable, Sendable {
    public static let interval: TimeInterval = 60

    public enum Decision: Hashable, Sendable {
        case saveNow
        case scheduleAt(Date)
        case alreadyScheduled
    }

    private var lastSave: Date?
    private var scheduledAt: Date?

    public init() {}

    /// Called after each record.
    public mutating func recordAdded(now: Date) -> Decision {
        if scheduledAt != nil { return .alreadyScheduled }
        guard let lastSave, now.timeIntervalSince(lastSave) < Self.interval else { return .saveNow }
        let due = lastSave.addingTimeInterval(Self.interval)
        scheduledAt = due
        return .scheduleAt(due)
    }

    /// A save finished (successfully or not); only success moves the minute forward.
    public mutating func saveFinished(at time: Date, succeeded: Bool) {
        scheduledAt = nil
        if succeeded { lastSave = time }
    }
}

/// Keeps one credential's usage statistics and writes them to `usages_path` atomically.
public actor UsageRecorder {
    public let path: String
    private let store: any CredentialFileStore
    private let clock: any PoolClock
    private let timeZone: TimeZone
    private let sleep: @Sendable (Duration) async throws -> Void
    public private(set) var statistics: UsageStatistics
    private var throttle = SaveThrottle()
    private var pendingSave: Task<Void, Never>?
    /// The last save error, for the operator's logs; nil after a successful save.
    public private(set) var lastSaveError: String?

    public init(path: String, store: any CredentialFileStore, clock: any PoolClock, timeZone: TimeZone = .current,
                pricing: PricingTable = .bundled,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.path = path
        self.store = store
        self.clock = clock
        self.timeZone = timeZone
        self.sleep = sleep
        statistics = UsageStatistics(pricing: pricing)
    }

    /// Loads the saved file. A missing file is a fresh start; a corrupt one is reported, and
    /// replaced by the next save.
    /// - Returns: a warning for the log, if any.
    public func load() -> String? {
        do {
            guard let data = try store.read(path) else { return nil }
            statistics = try UsageStatistics(fileData: data, pricing: statistics.pricing)
            return nil
        } catch {
            return "usage statistics \(path) could not be read and will be started afresh: \(error)"
        }
    }

    public func record(_ record: UsageRecord) {
        guard statistics.record(record) else { return }
        switch throttle.recordAdded(now: clock.now()) {
        case .saveNow:
            save()
        case .scheduleAt(let due):
            let delay = max(0, due.timeIntervalSince(clock.now()))
            pendingSave = Task { [sleep] in
                guard (try? await sleep(.milliseconds(Int64(delay * 1000)))) != nil else { return }
                self.saveScheduled()
            }
        case .alreadyScheduled:
            break
        }
    }

    /// Shutdown: cancels the pending timer and saves now.
    public func flush() {
        pendingSave?.cancel()
        pendingSave = nil
        save()
    }

    private func saveScheduled() {
        pendingSave = nil
        save()
    }

    private func save() {
        let data = statistics.fileData(timeZone: timeZone)
        do {
            try store.writeAtomically(data, to: path, permissions: 0o600)
            lastSaveError = nil
            throttle.saveFinished(at: clock.now(), succeeded: true)
        } catch {
            lastSaveError = "save usage statistics \(path): \(error)"
            throttle.saveFinished(at: clock.now(), succeeded: false)
        }
    }
}
