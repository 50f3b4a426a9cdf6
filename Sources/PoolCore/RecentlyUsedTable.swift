import Foundation

/// A map whose entries live `lifetime` after their last use and, past `capacity`, lose their
/// least recently used tenth at once (one sort per many insertions): what sticky sessions and
/// continuation bindings both keep.
struct RecentlyUsedTable<Key: Hashable & Sendable, Value: Hashable & Sendable>: Hashable, Sendable {
    private struct Entry: Hashable, Sendable {
        var value: Value
        var lastUsedAt: Date
    }

    let lifetime: TimeInterval
    let capacity: Int
    private var entries: [Key: Entry] = [:]

    init(lifetime: TimeInterval, capacity: Int) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
    }

    var count: Int { entries.count }

    /// The live value, its lifetime refreshed; an expired entry vanishes.
    mutating func lookup(_ key: Key, now: Date) -> Value? {
        guard var entry = entries[key] else { return nil }
        guard now.timeIntervalSince(entry.lastUsedAt) < lifetime else {
            entries[key] = nil
            return nil
        }
        entry.lastUsedAt = now
        entries[key] = entry
        return entry.value
    }

    /// The live value, without refreshing it.
    func peek(_ key: Key, now: Date) -> Value? {
        entries[key].flatMap { now.timeIntervalSince($0.lastUsedAt) < lifetime ? $0.value : nil }
    }

    mutating func set(_ key: Key, _ value: Value, now: Date) {
        entries[key] = Entry(value: value, lastUsedAt: now)
        if entries.count > capacity { evictLeastRecentlyUsed() }
    }

    /// Changes an entry's value in place (its lifetime as it was); false when there is none.
    @discardableResult
    mutating func modify(_ key: Key, _ change: (inout Value) -> Void) -> Bool {
        guard entries[key] != nil else { return false }
        change(&entries[key]!.value)
        return true
    }

    mutating func remove(_ key: Key) {
        entries[key] = nil
    }

    /// Drops every entry `doomed` picks; how many went.
    @discardableResult
    mutating func removeAll(where doomed: (Key, Value) -> Bool) -> Int {
        let keys = entries.filter { doomed($0.key, $0.value.value) }.map(\.key)
        keys.forEach { entries[$0] = nil }
        return keys.count
    }

    mutating func purgeExpired(now: Date) {
        entries = entries.filter { now.timeIntervalSince($0.value.lastUsedAt) < lifetime }
    }

    func liveValues(now: Date) -> [Value] {
        entries.values.filter { now.timeIntervalSince($0.lastUsedAt) < lifetime }.map(\.value)
    }

    private mutating func evictLeastRecentlyUsed() {
        let dropCount = max(entries.count - capacity, capacity / 10)
        let oldest = entries.sorted { $0.value.lastUsedAt < $1.value.lastUsedAt }.prefix(dropCount)
        oldest.forEach { entries[$0.key] = nil }
    }
}
