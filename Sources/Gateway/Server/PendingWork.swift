import Synchronization

/// Fire-and-forget tasks that shutdown must still wait for (usage records of the last answers).
final class PendingWork: Sendable {
    private let state = Mutex<(next: UInt64, running: [UInt64: Task<Void, Never>])>((0, [:]))

    func run(_ work: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            state.next += 1
            let id = state.next
            state.running[id] = Task {
                await work()
                _ = self.state.withLock { $0.running.removeValue(forKey: id) }
            }
        }
    }

    /// Returns once every task started so far has finished.
    func waitForAll() async {
        while let task = state.withLock({ $0.running.values.first }) { await task.value }
    }
}
