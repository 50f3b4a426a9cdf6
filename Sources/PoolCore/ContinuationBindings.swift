public import Foundation

/// Which account issued each piece of continuation state a client may send back: turn-state
/// tokens, response ids (`previous_response_id`) and encrypted reasoning or compaction items.
/// That state only works on — and must only ever be sent to — the account that made it
/// (codex-wire-2026.md §1 "Turn-state stickiness").
///
/// Entries live 24 hours after their last use; past `capacity` the least recently used go.
public struct ContinuationBindings: Sendable {
    public enum Kind: UInt8, Hashable, Sendable {
        case turnState
        case responseID
        /// Keyed by `fingerprint(of:)` of the encrypted content, which may be kilobytes long.
        case encryptedContent
    }

    struct Key: Hashable, Sendable {
        var kind: Kind
        var value: String
    }

    struct Entry: Sendable {
        var tag: String
        var lastUsedAt: Date
    }

    public static let lifetime: TimeInterval = 24 * 3600
    public let capacity: Int
    private var entries: [Key: Entry] = [:]

    public init(capacity: Int = 200_000) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { entries.count }

    public mutating func bind(_ kind: Kind, _ value: String, to tag: String, now: Date) {
        guard !value.isEmpty else { return }
        entries[Key(kind: kind, value: value)] = Entry(tag: tag, lastUsedAt: now)
        if entries.count > capacity { evictLeastRecentlyUsed() }
    }

    /// The account that issued `value`, if it is known and alive; refreshes its lifetime.
    public mutating func credential(for kind: Kind, _ value: String, now: Date) -> String? {
        let key = Key(kind: kind, value: value)
        guard var entry = entries[key] else { return nil }
        guard now.timeIntervalSince(entry.lastUsedAt) < Self.lifetime else {
            entries[key] = nil
            return nil
        }
        entry.lastUsedAt = now
        entries[key] = entry
        return entry.tag
    }

    /// A short stand-in for a long opaque value: 64-bit FNV-1a and the length, in hex.
    public static func fingerprint(of bytes: some Sequence<UInt8>) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var length = 0
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
            length += 1
        }
        return String(hash, radix: 16) + ":" + String(length, radix: 16)
    }

    private mutating func evictLeastRecentlyUsed() {
        let dropCount = max(entries.count - capacity, capacity / 10)
        let oldest = entries.sorted { $0.value.lastUsedAt < $1.value.lastUsedAt }.prefix(dropCount)
        oldest.forEach { entries[$0.key] = nil }
    }
}

/// What the continuation state a request carries means for where it may go.
public enum ContinuationTarget: Hashable, Sendable {
    /// No state this instance knows: the request is placed as usual.
    case unbound
    /// The state belongs to this credential, which can serve the user now.
    case continueOn(String)
    /// The state belongs to a credential that cannot serve the user now (rate limited, disabled,
    /// connector gone, or outside the user's pool).
    case lost(String)
}
