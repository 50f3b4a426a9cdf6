import Synchronization

/// A value shared between event-loop callbacks, child tasks and the test body.
public final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    public init(_ value: Value) {
        storage = Mutex(value)
    }

    public func update<T>(_ body: (inout Value) -> T) -> T {
        storage.withLock { body(&$0) }
    }

    public var value: Value { storage.withLock { $0 } }
}
