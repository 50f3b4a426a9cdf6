import Foundation
import Storage
import Synchronization

/// Finished requests as they happen, for the live event streams of the admin API.
final class RequestFeed: Sendable {
    private let subscribers = Mutex<[UInt64: @Sendable (RequestRecord) -> Void]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// `deliver` runs on whatever thread finished the request; the returned id unsubscribes.
    func subscribe(_ deliver: @escaping @Sendable (RequestRecord) -> Void) -> UInt64 {
        let id = nextID.add(1, ordering: .relaxed).newValue
        subscribers.withLock { $0[id] = deliver }
        return id
    }

    func unsubscribe(_ id: UInt64) {
        _ = subscribers.withLock { $0.removeValue(forKey: id) }
    }

    var hasSubscribers: Bool { subscribers.withLock { !$0.isEmpty } }

    func publish(_ record: RequestRecord) {
        let deliveries = subscribers.withLock { Array($0.values) }
        for deliver in deliveries { deliver(record) }
    }
}
