public import Foundation

/// Wall-clock time, injected so tests control it. Rate-limit resets are wall-clock instants
/// (unix seconds from upstream), so a monotonic clock would not do.
public protocol PoolClock: Sendable {
    func now() -> Date
}

public struct SystemClock: PoolClock {
    public init() {}
    public func now() -> Date { Date() }
}
