/// Something a test starts and must stop, awaiting it, also when the test fails midway.
public protocol AsyncStoppable: Sendable {
    func stop() async
}

extension AsyncStoppable {
    /// Runs `body`, then stops — after a thrown error too — before the test ends.
    public func stopAfter<Result>(_ body: () async throws -> Result) async throws -> Result {
        let result: Result
        do {
            result = try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
        return result
    }
}

/// A condition a test waited for did not come true in time.
public struct ConditionTimeout: Error, CustomStringConvertible {
    public var description: String
}

/// Checks `condition` every millisecond until it holds; throws after `timeout` instead of
/// spinning forever.
public func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw ConditionTimeout(description: "\(what): not within \(timeout)") }
        try await Task.sleep(for: .milliseconds(1))
    }
}
