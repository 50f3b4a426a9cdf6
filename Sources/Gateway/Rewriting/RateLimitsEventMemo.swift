#if canImport(Glibc)
import Glibc
#endif
import PoolCore

/// The last `codex.rate_limits` event of one WebSocket session, with the bytes it was read from.
/// Every turn starts with one, and an account's consecutive turns usually carry the same bytes:
/// comparing them costs a fraction of reading the event again.
struct RateLimitsEventMemo {
    private var bytes: [UInt8] = []
    private var event: RateLimitsEvent?

    /// The event `bytes` hold (nil when they hold none), read only when they differ from the last
    /// event's bytes.
    mutating func event(of bytes: UnsafeRawBufferPointer) -> RateLimitsEvent? {
        if let event, isLast(bytes) { return event }
        guard let read = RateLimitsEvent(bytes: bytes) else { return nil }
        self.bytes = Array(bytes)
        event = read
        return read
    }

    private func isLast(_ candidate: UnsafeRawBufferPointer) -> Bool {
        guard candidate.count == bytes.count else { return false }
        guard let base = candidate.baseAddress else { return bytes.isEmpty }
        return bytes.withUnsafeBytes { memcmp($0.baseAddress!, base, candidate.count) == 0 }
    }
}
