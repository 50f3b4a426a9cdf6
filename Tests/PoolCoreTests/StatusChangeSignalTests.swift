import Foundation
import PoolCore
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(1))) struct StatusChangeSignalTests {
    /// A burst of notifications is one pending tick per consumer.
    @Test func burstsCoalesceIntoOneTick() async {
        let signal = StatusChangeSignal()
        let ticks = signal.subscribe()
        for _ in 0..<100 { signal.notify() }
        signal.finishAll()
        var count = 0
        for await _ in ticks { count += 1 }
        #expect(count == 1)
    }

    @Test func everySubscriberIsWokenAndLeavesWhenDone() async throws {
        let signal = StatusChangeSignal()
        var first: AsyncStream<Void>.Iterator? = signal.subscribe().makeAsyncIterator()
        var second = signal.subscribe().makeAsyncIterator()
        #expect(signal.subscriberCount == 2)
        signal.notify()
        #expect(await first?.next() != nil)
        #expect(await second.next() != nil)
        first = nil
        try await waitUntil("the dropped subscriber left") { signal.subscriberCount == 1 }
        #expect(signal.subscriberCount == 1)
    }

    /// Scenario 24: a change of the aggregate produces one frame; a recomputation without change none.
    @Test("Scenario 24: a change of the aggregate produces one frame; a recomputation without change none") func gateEmitsOnlyChanges() {
        var gate = StatusFrameGate()
        let status = AggregateStatus(fiveHourUtilization: 1, fiveHourReset: nil, weeklyUtilization: 2, weeklyReset: nil, planWeight: 1)
        #expect(gate.next(status) == status)
        #expect(gate.next(status) == nil)
        var changed = status
        changed.weeklyUtilization = 3
        #expect(gate.next(changed) == changed)
    }
}

@Suite(.timeLimit(.minutes(1))) struct SessionKeyTests {
    @Test func prefersCodexsHyphenatedHeader() {
        #expect(SessionKey.from([("Session-Id", "a"), ("session_id", "b"), ("thread-id", "c")]) == "a")
        #expect(SessionKey.from([("session_id", "b"), ("thread-id", "c")]) == "b")
        #expect(SessionKey.from([("x-client-request-id", "d"), ("thread-id", "c")]) == "c")
        #expect(SessionKey.from([("x-client-request-id", "d")]) == "d")
        #expect(SessionKey.from([("session-id", ""), ("content-type", "x")]) == nil)
        #expect(SessionKey.from([("session-id", String(repeating: "x", count: 1000))]) == nil, "absurdly long keys are not kept in memory")
    }
}
