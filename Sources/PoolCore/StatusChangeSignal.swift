import Synchronization

/// A process-wide "the pool's status may have changed" broadcast (§9.3).
///
/// Each subscriber holds at most one pending tick, so a burst of changes wakes a slow consumer
/// once; the consumer then recomputes its aggregate and emits only if it differs from what it
/// sent last (see `StatusFrameGate`).
public final class StatusChangeSignal: Sendable {
    private struct State {
        var nextID = 0
        var subscribers: [Int: AsyncStream<Void>.Continuation] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// A stream of ticks for one consumer; it ends when the consumer stops iterating.
    public func subscribe() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    public func notify() {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield() }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Ends every stream (shutdown).
    public func finishAll() {
        let subscribers = state.withLock { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}

/// Remembers the last status a consumer emitted, so identical recomputations are not re-sent.
public struct StatusFrameGate: Sendable {
    private var lastSent: AggregateStatus?

    public init() {}

    /// The status to send, or nil when it reads the same as the last one sent. Compared as
    /// sent (resets in whole seconds), so floating-point jitter in the averaged resets does not
    /// produce frames that look identical to the watcher.
    public mutating func next(_ status: AggregateStatus) -> AggregateStatus? {
        guard status.json != lastSent?.json else { return nil }
        lastSent = status
        return status
    }
}
