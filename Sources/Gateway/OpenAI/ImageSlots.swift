import Configuration
import NIOCore
import Synchronization

/// Which accounts may take an image request now (`images:`, `image_concurrency:`), and the
/// requests each is serving. An image request holds a slot on its account from the attempt
/// until its answer ends; when every account that may serve images is busy, it waits for a slot
/// a while, then gets 429.
final class ImageSlots: Sendable {
    private struct State {
        var busy: [String: Int] = [:]
        var waiters: [(id: UInt64, promise: EventLoopPromise<Void>)] = []
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    /// How long a request waits for a free slot before its 429.
    let patience: TimeAmount

    init(patience: TimeAmount = .seconds(10)) {
        self.patience = patience
    }

    /// Local credentials that may not serve images at all, and the capacity of the others.
    private static func rules(_ configuration: CodexpoolConfiguration) -> (disabled: Set<String>, capacity: [String: Int]) {
        var disabled: Set<String> = [], capacity: [String: Int] = [:]
        for case .local(let local) in configuration.credentials {
            if local.images { capacity[local.tag] = local.imageConcurrency } else { disabled.insert(local.tag) }
        }
        return (disabled, capacity)
    }

    /// Credentials not to pick now: those without images, and those at their concurrency.
    /// `full` is true when some credential was left out only for being busy (worth waiting).
    func unavailable(_ configuration: CodexpoolConfiguration) -> (tags: Set<String>, full: Bool) {
        let (disabled, capacity) = Self.rules(configuration)
        let busy = state.withLock { $0.busy }
        let full = Set(capacity.filter { tag, limit in busy[tag, default: 0] >= limit }.keys)
        return (disabled.union(full), !full.isEmpty)
    }

    /// Takes a slot on `tag`; false when it is full (another request took the last one).
    func take(_ tag: String, configuration: CodexpoolConfiguration) -> Bool {
        let limit = Self.rules(configuration).capacity[tag] ?? Int.max
        return state.withLock { state in
            guard state.busy[tag, default: 0] < limit else { return false }
            state.busy[tag, default: 0] += 1
            return true
        }
    }

    func release(_ tag: String) {
        let waiters = state.withLock { state in
            if let count = state.busy[tag] { state.busy[tag] = count > 1 ? count - 1 : nil }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.promise.succeed() }
    }

    /// Completes when some slot is released (or after `patience`: the future then fails).
    func nextRelease(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let id = state.withLock { state in
            state.nextWaiter += 1
            state.waiters.append((state.nextWaiter, promise))
            return state.nextWaiter
        }
        // Each promise is completed once: by a release, or by the timeout if still waiting.
        let timeout = eventLoop.scheduleTask(in: patience) { [self] in
            let waiting = state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0) } != nil
            }
            if waiting { promise.fail(ChannelError.connectTimeout(patience)) }
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        return promise.futureResult
    }

    /// Requests waiting for a slot now (tests).
    var waiting: Int {
        state.withLock { $0.waiters.count }
    }

    /// Requests under way on `tag` (metrics, tests).
    func busy(_ tag: String) -> Int {
        state.withLock { $0.busy[tag, default: 0] }
    }
}
