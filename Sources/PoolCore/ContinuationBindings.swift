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

    public static let lifetime: TimeInterval = 24 * 3600
    private var entries: RecentlyUsedTable<Key, String>

    public var capacity: Int { entries.capacity }

    public init(capacity: Int = 200_000) {
        entries = RecentlyUsedTable(lifetime: Self.lifetime, capacity: capacity)
    }

    public var count: Int { entries.count }

    public mutating func bind(_ kind: Kind, _ value: String, to tag: String, now: Date) {
        guard !value.isEmpty else { return }
        entries.set(Key(kind: kind, value: value), tag, now: now)
    }

    /// The account that issued `value`, if it is known and alive; refreshes its lifetime.
    public mutating func credential(for kind: Kind, _ value: String, now: Date) -> String? {
        entries.lookup(Key(kind: kind, value: value), now: now)
    }

    /// A short stand-in for a long opaque value: 64-bit FNV-1a and the length, in hex.
    public static func fingerprint(of bytes: some Collection<UInt8>) -> String {
        String(FNV1a.hash(bytes), radix: 16) + ":" + String(bytes.count, radix: 16)
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
