#if canImport(Glibc)
import Glibc
#endif
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
        // Compared with the last answer's lines where they lie: no key is made for an unchanged answer.
        if let entry = entries.withLock({ $0[tag] }), head.withFields({ Self.lines($1, in: $0, match: entry.key) }) { return entry.snapshot }
        // The key and the snapshot from one pass over the `x-` lines.
        let (key, snapshot) = head.withFields { bytes, fields in
            var key: [UInt8] = []
            key.reserveCapacity(1024)
            var lines: [(String, String)] = []
            for field in fields where Self.isLimitLine(field, in: bytes) {
                key += bytes[field.name]
                key.append(0)
                key += bytes[field.value]
                key.append(0)
                lines.append((HTTPHeaderFields.string(bytes, field.name), HTTPHeaderFields.string(bytes, field.value)))
            }
            return (key, RateLimitSnapshot(headers: lines))
        }
        entries.withLock { $0[tag] = Entry(key: key, snapshot: snapshot) }
        return snapshot
    }

    private static func isLimitLine(_ field: HTTPHeaderField, in bytes: UnsafeRawBufferPointer) -> Bool {
        HTTPToken.name(UnsafeRawBufferPointer(rebasing: bytes[field.name]), hasPrefix: "x-")
    }

    /// Whether the `x-` lines among `fields` are exactly those `key` was made from.
    private static func lines(_ fields: [HTTPHeaderField], in bytes: UnsafeRawBufferPointer, match key: [UInt8]) -> Bool {
        key.withUnsafeBytes { key in
            var offset = 0
            /// The next part of the key is `part`, then a NUL.
            func next(_ part: Range<Int>) -> Bool {
                guard offset + part.count < key.count, key[offset + part.count] == 0,
                      part.isEmpty || memcmp(key.baseAddress! + offset, bytes.baseAddress! + part.lowerBound, part.count) == 0 else { return false }
                offset += part.count + 1
                return true
            }
            for field in fields where isLimitLine(field, in: bytes) {
                guard next(field.name), next(field.value) else { return false }
            }
            return offset == key.count
        }
    }
}
