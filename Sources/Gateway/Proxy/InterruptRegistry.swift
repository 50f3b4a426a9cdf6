import PoolCore
import Synchronization

/// The requests and WebSocket sessions that must be cut when their credential becomes unusable
/// or a balancer moves their sessions (ocm-reference.md §4.6).
final class InterruptRegistry: Sendable {
    struct Registration: Sendable {
        var credential: String
        /// The balancer and scope the work was selected through; nil for a directly used credential.
        var balancer: String?
        var scope: SelectionScope
        /// Runs on whatever thread fires the interruption; implementations hop to their event loop.
        var interrupt: @Sendable (_ reason: String) -> Void
    }

    private let entries = Mutex<(next: UInt64, registrations: [UInt64: Registration])>((0, [:]))

    /// Registers work; the returned id unregisters it.
    func register(_ registration: Registration) -> UInt64 {
        entries.withLock { entries in
            entries.next += 1
            entries.registrations[entries.next] = registration
            return entries.next
        }
    }

    func unregister(_ id: UInt64) {
        _ = entries.withLock { $0.registrations.removeValue(forKey: id) }
    }

    /// Cuts the matching work; each registration fires at most once.
    /// - Returns: how many connections were interrupted.
    @discardableResult
    func fire(_ interruption: Interruption) -> Int {
        let (matched, reason) = entries.withLock { entries -> ([Registration], String) in
            let ids: [UInt64]
            let reason: String
            switch interruption {
            case .credential(let tag):
                ids = entries.registrations.filter { $0.value.credential == tag }.map(\.key)
                reason = "credential \(tag) became unavailable"
            case .rebalance(let balancer, let tag, let scope):
                ids = entries.registrations.filter { $0.value.credential == tag && $0.value.balancer == balancer && $0.value.scope == scope }.map(\.key)
                reason = "balancer \(balancer) moved its sessions away from \(tag)"
            }
            return (ids.compactMap { entries.registrations.removeValue(forKey: $0) }, reason)
        }
        for registration in matched { registration.interrupt(reason) }
        return matched.count
    }
}
