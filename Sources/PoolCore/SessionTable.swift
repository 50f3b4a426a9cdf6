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

    /// Where a session is, and until when it is not to be rebalanced (a turn in progress is
    /// finishing there).
    struct Assignment: Hashable, Sendable {
        var tag: String
        var heldUntil: Date?
    }

    public static let lifetime: TimeInterval = 24 * 3600
    private var entries: RecentlyUsedTable<Key, Assignment>

    public var capacity: Int { entries.capacity }

    public init(capacity: Int = 100_000) {
        entries = RecentlyUsedTable(lifetime: Self.lifetime, capacity: capacity)
    }

    public var count: Int { entries.count }

    /// The credential a live session is on; refreshes its lifetime. Expired entries vanish.
    public mutating func lookup(_ key: Key, now: Date) -> String? {
        entries.lookup(key, now: now)?.tag
    }

    /// Whether a live entry exists, without refreshing it.
    public func contains(_ key: Key, now: Date) -> Bool {
        entries.peek(key, now: now) != nil
    }

    /// Whether the session is held on its credential at `now` (see `assign(_:to:now:holdUntil:)`);
    /// a hold serves one selection — the reconnect it was made for — and is gone after it.
    public mutating func takeHold(_ key: Key, now: Date) -> Bool {
        var until: Date?
        entries.modify(key) { assignment in
            until = assignment.heldUntil
            assignment.heldUntil = nil
        }
        return until.map { now < $0 } ?? false
    }

    /// - Parameter holdUntil: keeps rebalancing away from the session until then.
    public mutating func assign(_ key: Key, to tag: String, now: Date, holdUntil: Date? = nil) {
        entries.set(key, Assignment(tag: tag, heldUntil: holdUntil), now: now)
    }

    public mutating func remove(_ key: Key) {
        entries.remove(key)
    }

    /// Drops every session of `scope` on `tag` (rebalancing moves them all).
    @discardableResult
    public mutating func removeAll(on tag: String, scope: SelectionScope) -> Int {
        entries.removeAll { key, assignment in key.scope == scope && assignment.tag == tag }
    }

    public mutating func purgeExpired(now: Date) {
        entries.purgeExpired(now: now)
    }

    /// Sessions per credential tag, for status output.
    public func countsByTag(now: Date) -> [String: Int] {
        entries.liveValues(now: now).reduce(into: [:]) { $0[$1.tag, default: 0] += 1 }
    }
}
