import Foundation
import Synchronization

/// Failed authentications per client address and minute; past the limit every request from that
/// address is refused (429) until its minute is over, so tokens cannot be guessed at speed.
/// Time comes from the caller (the runtime's clock), so tests drive it.
final class AuthenticationThrottle: Sendable {
    private struct Window {
        var startedAt: Date
        var failures: Int
    }

    private let limit: Int
    private let window: TimeInterval = 60
    /// Addresses remembered at most; beyond it the stalest windows are dropped (an attacker with
    /// many addresses must not grow this without bound).
    private let capacity: Int
    private let windows = Mutex<[String: Window]>([:])
    /// True while any address has failures on record: the per-request check (and the address
    /// string it needs) is skipped while nobody failed.
    private let anyFailures = Atomic<Bool>(false)

    /// Whether `retryAfter` can answer anything but nil right now (no lock, no address needed).
    var mayRefuse: Bool { anyFailures.load(ordering: .relaxed) }

    init(failuresPerMinute limit: Int, capacity: Int = 65_536) {
        self.limit = limit
        self.capacity = capacity
    }

    /// Seconds until `address` may try again, or nil when it may now.
    func retryAfter(_ address: String, now: Date) -> Int? {
        windows.withLock { windows in
            guard let entry = windows[address], now.timeIntervalSince(entry.startedAt) < window, entry.failures >= limit else { return nil }
            return max(1, Int((entry.startedAt.addingTimeInterval(window).timeIntervalSince(now)).rounded(.up)))
        }
    }

    /// Counts a failed authentication from `address`.
    func recordFailure(_ address: String, now: Date) {
        windows.withLock { windows in
            if var entry = windows[address], now.timeIntervalSince(entry.startedAt) < window {
                entry.failures += 1
                windows[address] = entry
                return
            }
            if windows.count >= capacity {
                windows = windows.filter { now.timeIntervalSince($0.value.startedAt) < window }
                if windows.count >= capacity, let stalest = windows.min(by: { $0.value.startedAt < $1.value.startedAt })?.key {
                    windows[stalest] = nil
                }
            }
            windows[address] = Window(startedAt: now, failures: 1)
            anyFailures.store(true, ordering: .relaxed)
        }
    }
}
