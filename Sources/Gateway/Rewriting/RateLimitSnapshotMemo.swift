import HTTPWire
import PoolCore
import Synchronization

/// The last rate-limit snapshot read from each credential's response headers, with the bytes
/// of the `x-` header lines it was read from. Consecutive answers of an account usually carry
/// the same values, and comparing their bytes costs a fraction of parsing them again (this
/// runs for every answer).
final class RateLimitSnapshotMemo: Sendable {
    private struct Entry {
        /// Each `x-` header's name and value, each followed by a NUL (which neither can hold).
        var key: [UInt8]
        var snapshot: RateLimitSnapshot
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// The snapshot of `head`'s headers (answered by `tag`), parsed only when its `x-` headers changed.
    func snapshot(of head: ReceivedResponseHead, tag: String) -> RateLimitSnapshot {
        let key = head.withFields { bytes, fields in
            var key: [UInt8] = []
            key.reserveCapacity(1024)
            for field in fields where HTTPToken.name(UnsafeRawBufferPointer(rebasing: bytes[field.name]), hasPrefix: "x-") {
                key += bytes[field.name]
                key.append(0)
                key += bytes[field.value]
                key.append(0)
            }
            return key
        }
        let known = entries.withLock { entries -> RateLimitSnapshot? in
            guard let entry = entries[tag], entry.key == key else { return nil }
            return entry.snapshot
        }
        if let known { return known }
        let snapshot = head.withFields { bytes, fields in
            RateLimitSnapshot(headers: fields.compactMap { field in
                guard HTTPToken.name(UnsafeRawBufferPointer(rebasing: bytes[field.name]), hasPrefix: "x-") else { return nil }
                return (HTTPHeaderFields.string(bytes, field.name), HTTPHeaderFields.string(bytes, field.value))
            })
        }
        entries.withLock { $0[tag] = Entry(key: key, snapshot: snapshot) }
        return snapshot
    }
}
