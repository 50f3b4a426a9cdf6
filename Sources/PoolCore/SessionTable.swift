public import Foundation

/// Which credentials a user's sessions may land on; sessions never cross scopes, so a user who
/// may not use external credentials never inherits a session placed on one.
public enum SelectionScope: String, Hashable, Sendable {
    case all
    case nonExternal = "non-external"

    public init(allowExternalUsage: Bool) {
        self = allowExternalUsage ? .all : .nonExternal
    }
}

/// Sticky session assignments of one balancer: session key → credential tag.
///
/// An entry lives 24 hours after its *last use* (the reference expired it 24 hours after
/// creation, which moved long-running sessions mid-work). Memory is bounded: past `capacity`
/// the least recently used entries are dropped.
public struct SessionTable: Hashable, Sendable {
    public struct Key: Hashable, Sendable {
        public var sessionID: String
        public var scope: SelectionScope

        public init(sessionID: String, scope: SelectionScope) {
            self.sessionID = sessionID
            self.scope = scope
        }
    }

    struct Entry: Hashable, Sendable {
        var tag: String
        var lastUsedAt: Date
        /// Until then the session is not rebalanced: a turn in progress is finishing here.
        var heldUntil: Date?
    }

    public static let lifetime: TimeInterval = 24 * 3600
    public let capacity: Int
    private var entries: [Key: Entry] = [:]

    public init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { entries.count }

    /// The credential a live session is on; refreshes its lifetime. Expired entries vanish.
    public mutating func lookup(_ key: Key, now: Date) -> String? {
        guard var entry = entries[key] else { return nil }
        guard now.timeIntervalSince(entry.lastUsedAt) < Self.lifetime else {
            entries[key] = nil
            return nil
        }
        entry.lastUsedAt = now
        entries[key] = entry
        return entry.tag
    }

    /// Whether a live entry exists, without refreshing it.
    public func contains(_ key: Key, now: Date) -> Bool {
        entries[key].map { now.timeIntervalSince($0.lastUsedAt) < Self.lifetime } ?? false
    }

    /// Whether the session is held on its credential at `now` (see `assign(_:to:now:holdUntil:)`);
    /// a hold serves one selection — the reconnect it was made for — and is gone after it.
    public mutating func takeHold(_ key: Key, now: Date) -> Bool {
        guard let until = entries[key]?.heldUntil else { return false }
        entries[key]?.heldUntil = nil
        return now < until
    }

    /// - Parameter holdUntil: keeps rebalancing away from the session until then.
    public mutating func assign(_ key: Key, to tag: String, now: Date, holdUntil: Date? = nil) {
        entries[key] = Entry(tag: tag, lastUsedAt: now, heldUntil: holdUntil)
        if entries.count > capacity { evictLeastRecentlyUsed() }
    }

    public mutating func remove(_ key: Key) {
        entries[key] = nil
    }

    /// Drops every session of `scope` on `tag` (rebalancing moves them all).
    @discardableResult
    public mutating func removeAll(on tag: String, scope: SelectionScope) -> Int {
        let doomed = entries.filter { $0.key.scope == scope && $0.value.tag == tag }.map(\.key)
        doomed.forEach { entries[$0] = nil }
        return doomed.count
    }

    public mutating func purgeExpired(now: Date) {
        entries = entries.filter { now.timeIntervalSince($0.value.lastUsedAt) < Self.lifetime }
    }

    /// Sessions per credential tag, for status output.
    public func countsByTag(now: Date) -> [String: Int] {
        entries.values.filter { now.timeIntervalSince($0.lastUsedAt) < Self.lifetime }
            .reduce(into: [:]) { $0[$1.tag, default: 0] += 1 }
    }

    /// Drops the oldest tenth at once, so a full table costs one sort per many insertions.
    private mutating func evictLeastRecentlyUsed() {
        let excess = entries.count - capacity
        let dropCount = max(excess, capacity / 10)
        let oldest = entries.sorted { $0.value.lastUsedAt < $1.value.lastUsedAt }.prefix(dropCount)
        oldest.forEach { entries[$0.key] = nil }
    }
}
