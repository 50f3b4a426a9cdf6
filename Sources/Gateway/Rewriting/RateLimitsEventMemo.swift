#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import PoolCore

/// The last `codex.rate_limits` event of one WebSocket session, with the bytes it was read from
/// and the event the client got for it. Every turn starts with one, and an account's
/// consecutive turns usually carry the same bytes: comparing them costs a fraction of reading
/// the event again, and while the pool's view is the same too, so is what the client gets.
struct RateLimitsEventMemo {
    private var bytes: [UInt8] = []
    private var event: RateLimitsEvent?
    private var written: (status: AggregateStatus, countdowns: Countdowns, output: ByteBuffer)?

    /// What of the clock a rewritten event shows: each window's seconds to its reset.
    private struct Countdowns: Equatable {
        var fiveHour: Int64?
        var weekly: Int64?

        init(_ status: AggregateStatus, now: Date) {
            fiveHour = status.fiveHourReset.map { RateLimitsEventWriter.secondsLeft(until: $0, now: now) }
            weekly = status.weeklyReset.map { RateLimitsEventWriter.secondsLeft(until: $0, now: now) }
        }
    }

    /// The event `bytes` hold (nil when they hold none), read only when they differ from the last
    /// event's bytes.
    mutating func event(of bytes: UnsafeRawBufferPointer) -> RateLimitsEvent? {
        if let event, isLast(bytes) { return event }
        written = nil
        guard let read = RateLimitsEvent(bytes: bytes) else { return nil }
        self.bytes = Array(bytes)
        event = read
        return read
    }

    /// The client's event for the last event read as `write` makes it from the pool's view
    /// `status` at `now`: made again only when that view, or a countdown in it, changed.
    mutating func rewritten(with status: AggregateStatus, now: Date, write: () -> [UInt8]) -> ByteBuffer {
        let countdowns = Countdowns(status, now: now)
        if let written, written.status == status, written.countdowns == countdowns { return written.output }
        let output = ByteBuffer(bytes: write())
        written = (status, countdowns, output)
        return output
    }

    private func isLast(_ candidate: UnsafeRawBufferPointer) -> Bool {
        guard candidate.count == bytes.count else { return false }
        guard let base = candidate.baseAddress else { return bytes.isEmpty }
        return bytes.withUnsafeBytes { memcmp($0.baseAddress!, base, candidate.count) == 0 }
    }
}
