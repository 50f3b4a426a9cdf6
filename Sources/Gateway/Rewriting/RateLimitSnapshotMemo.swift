import NIOHTTP1
import PoolCore
import Synchronization

/// The last rate-limit snapshot read from each credential's response headers, with the header
/// values it was read from. Consecutive answers of an account usually carry the same values,
/// and comparing them costs a fraction of parsing them again (this runs for every answer).
final class RateLimitSnapshotMemo: Sendable {
    private struct Entry {
        var fields: [(name: String, value: String)]
        var snapshot: RateLimitSnapshot
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// The snapshot of `headers` (answered by `tag`), parsed only when its `x-` headers changed.
    func snapshot(of headers: HTTPHeaders, tag: String) -> RateLimitSnapshot {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(24)
        for (name, value) in headers where RateLimitSnapshot.isExtensionHeader(name) { fields.append((name, value)) }
        let known = entries.withLock { entries -> RateLimitSnapshot? in
            guard let entry = entries[tag], entry.fields.elementsEqual(fields, by: { $0.name == $1.name && $0.value == $1.value }) else { return nil }
            return entry.snapshot
        }
        if let known { return known }
        let snapshot = RateLimitSnapshot(headers: fields)
        entries.withLock { $0[tag] = Entry(fields: fields, snapshot: snapshot) }
        return snapshot
    }
}
