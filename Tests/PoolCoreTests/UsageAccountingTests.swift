import Foundation
import PoolCore
import Synchronization
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(1))) struct PricingTableTests {
    let pricing = PricingTable.bundled

    func cost(_ model: String, tier: String = "default", input: Int, cached: Int = 0, output: Int) -> Double {
        let window = pricing.contextWindow(model: model, tier: tier, inputTokens: input)
        return pricing.cost(UsageTotals(requestCount: 1, inputTokens: input, outputTokens: output, cachedTokens: cached),
                            model: model, tier: tier, contextWindow: window)
    }

    @Test func costByHand() {
        // (160 000 · 2.5 + 100 000 · 15 + 40 000 · 0.25) / 1e6 = 0.4 + 1.5 + 0.01
        #expect(cost("gpt-5.4", input: 200_000, cached: 40_000, output: 100_000) == 1.91)
        // over 272k input the premium row: (800 000 · 5 + 100 000 · 22.5 + 200 000 · 0.5) / 1e6 = 4 + 2.25 + 0.1
        #expect(cost("gpt-5.4", input: 1_000_000, cached: 200_000, output: 100_000) == 6.35)
        // over 272k input: premium 5 / 22.5: (300 000 · 5 + 20 000 · 22.5) / 1e6
        #expect(pricing.contextWindow(model: "gpt-5.4", tier: "default", inputTokens: 300_000) == 1_050_000)
        #expect(cost("gpt-5.4", input: 300_000, output: 20_000) == 1.95)
        #expect(pricing.contextWindow(model: "gpt-5.3-codex", tier: "default", inputTokens: 300_000) == 272_000, "no premium row")
        #expect(cost("gpt-5.4", input: 10, output: 10) == 0, "rounded to cents")
    }

    @Test func familyMatching() {
        #expect(pricing.price(model: "gpt-5.4-pro-2026-03", tier: "default", contextWindow: 272_000).input == 30)
        #expect(pricing.price(model: "gpt-4o-mini", tier: "default", contextWindow: 272_000).input == 0.15)
        #expect(pricing.price(model: "gpt-4o-2024-08-06", tier: "default", contextWindow: 272_000).input == 2.5)
        #expect(pricing.price(model: "gpt-5.2-chat-latest", tier: "default", contextWindow: 272_000).output == 14)
        #expect(pricing.price(model: "gpt-5.1-chat-latest", tier: "default", contextWindow: 272_000).output == 10)
        #expect(pricing.price(model: "gpt-5.5", tier: "default", contextWindow: 272_000).output == 15, "unknown gpt-5.x → gpt-5.4")
        #expect(pricing.price(model: "gpt-5.7-codex-mini", tier: "default", contextWindow: 272_000).output == 2)
        #expect(pricing.price(model: "gpt-5.9-codex", tier: "default", contextWindow: 272_000).output == 14)
        #expect(pricing.price(model: "mystery-model", tier: "default", contextWindow: 272_000) == pricing.price(model: "gpt-4o", tier: "default", contextWindow: 272_000))
    }

    @Test func tiers() {
        #expect(PricingTable.normalizedTier(" Priority ") == "priority")
        #expect(PricingTable.normalizedTier("flex") == "flex")
        for other in [nil, "", "auto", "default", "scale", "turbo"] { #expect(PricingTable.normalizedTier(other) == "default") }
        #expect(pricing.price(model: "gpt-5-mini", tier: "priority", contextWindow: 272_000).input == 0.45)
        #expect(pricing.price(model: "gpt-5.4", tier: "flex", contextWindow: 1_050_000).input == 2.5)
        #expect(pricing.price(model: "gpt-5.3-codex", tier: "flex", contextWindow: 272_000).input == 1.75, "missing in flex → standard")
        #expect(pricing.price(model: "gpt-5.4-pro", tier: "priority", contextWindow: 272_000).input == 30, "no priority row → standard")
    }
}

@Suite(.timeLimit(.minutes(1))) struct UsageStatisticsTests {
    let week = Date(timeIntervalSince1970: 1_773_014_400)   // 2026-03-09 00:00 UTC
    let shanghai = TimeZone(secondsFromGMT: 8 * 3600)!

    @Test func recordsCombinationsPerUserAndWeek() {
        var statistics = UsageStatistics()
        let counted = [
            statistics.record(UsageRecord(model: "gpt-5.4", inputTokens: 1000, cachedTokens: 500, outputTokens: 200, user: "alice", weekStart: week, time: t0)),
            statistics.record(UsageRecord(model: "gpt-5.4", serviceTier: "auto", inputTokens: 1000, outputTokens: 100, user: "bob", weekStart: week, time: t0 + 1)),
            statistics.record(UsageRecord(model: "gpt-5.4", inputTokens: 0, outputTokens: 0, time: t0)),
            statistics.record(UsageRecord(model: " ", inputTokens: 5, outputTokens: 5, time: t0)),
        ]
        #expect(counted == [true, true, false, false], "records without tokens or without a model do not count")
        #expect(statistics.combinations.count == 1)
        let combination = statistics.combinations.values.first!
        #expect(combination.total == UsageTotals(requestCount: 2, inputTokens: 2000, outputTokens: 300, cachedTokens: 500))
        #expect(combination.byUser["alice"] == UsageTotals(requestCount: 1, inputTokens: 1000, outputTokens: 200, cachedTokens: 500))
        #expect(statistics.lastUpdated == t0 + 1)
    }

    @Test func fileFormat() throws {
        var statistics = UsageStatistics()
        statistics.record(UsageRecord(model: "gpt-5.4", inputTokens: 200_000, cachedTokens: 40_000, outputTokens: 100_000, user: "alice", weekStart: week, time: t0))
        statistics.record(UsageRecord(model: "gpt-5.4", serviceTier: "priority", inputTokens: 100_000, outputTokens: 10_000, time: t0))
        let text = String(decoding: statistics.fileData(timeZone: shanghai), as: UTF8.self)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        #expect(object["last_updated"] as? String == "2027-01-15T16:00:00.000+08:00")
        let costs = object["costs"] as! [String: Any]
        // priority gpt-5.4: (100 000 · 5 + 10 000 · 30) / 1e6 = 0.8; standard: 1.91
        #expect(costs["total_usd"] as? Double == 2.71)
        #expect(costs["by_user"] as? [String: Double] == ["alice": 1.91])
        #expect(costs["by_week"] as? [String: Double] == ["2026-03-09 08:00:00 UTC+8": 1.91])
        #expect(costs["by_user_and_week"] as? [String: [String: Double]] == ["alice": ["2026-03-09 08:00:00 UTC+8": 1.91]])
        let combinations = object["combinations"] as! [[String: Any]]
        #expect(combinations.count == 2)
        #expect(combinations[0]["service_tier"] as? String == "priority" && combinations[0]["week_start_unix"] == nil)
        #expect(combinations[1]["service_tier"] == nil, "default tier is omitted")
        #expect(combinations[1]["week_start_unix"] as? Int == 1_773_014_400)
        #expect(combinations[1]["context_window"] as? Int == 272_000)
        let total = combinations[1]["total"] as! [String: Any]
        #expect(total["request_count"] as? Int == 1 && total["cached_tokens"] as? Int == 40_000 && total["cost_usd"] as? Double == 1.91)
        #expect((combinations[0]["by_user"] as? [String: Any])?.isEmpty == true, "by_user is always present")
    }

    @Test func savedFilesLoadBack() throws {
        var statistics = UsageStatistics()
        statistics.record(UsageRecord(model: "gpt-5.3-codex", serviceTier: "flex", inputTokens: 5000, cachedTokens: 4000, outputTokens: 700, user: "u", weekStart: week, time: t0))
        statistics.record(UsageRecord(model: "o3", inputTokens: 10, outputTokens: 1, time: t0 + 5))
        let loaded = try UsageStatistics(fileData: statistics.fileData(timeZone: shanghai))
        #expect(loaded == statistics)
    }

    @Test func legacyTokenFieldsAndBadEntries() throws {
        let legacy = """
            {"last_updated":"2026-03-14T10:00:00.123456789+08:00","combinations":[
              {"model":"gpt-5","context_window":0,"total":{"request_count":2,"prompt_tokens":100,"completion_tokens":20}},
              {"model":"","total":{"request_count":1,"input_tokens":5}},
              {"total":{"request_count":1}}]}
            """
        let loaded = try UsageStatistics(fileData: Data(legacy.utf8))
        #expect(loaded.combinations.count == 1)
        let (key, combination) = loaded.combinations.first!
        #expect(key.contextWindow == 272_000 && key.serviceTier == "default")
        #expect(combination.total == UsageTotals(requestCount: 2, inputTokens: 100, outputTokens: 20, cachedTokens: 0))
        #expect(combination.byUser.isEmpty)
        #expect(throws: (any Error).self) { try UsageStatistics(fileData: Data("not json".utf8)) }
    }

    @Test func weekKeysUseTheLocalZone() {
        let kolkata = TimeZone(secondsFromGMT: 5 * 3600 + 1800)!
        #expect(UsageStatistics.weekKeyForTesting(week, timeZone: kolkata) == "2026-03-09 05:30:00 UTC+5:30")
        #expect(UsageStatistics.weekKeyForTesting(week, timeZone: TimeZone(secondsFromGMT: -4 * 3600)!) == "2026-03-08 20:00:00 UTC-4")
        #expect(UsageStatistics.weekKeyForTesting(week, timeZone: TimeZone(identifier: "UTC")!) == "2026-03-09 00:00:00 UTC+0")
    }
}

@Suite(.timeLimit(.minutes(1))) struct UsageRecorderTests {
    /// A sleep the test ends by hand, so the scheduled save fires exactly when the test says.
    final class HeldSleep: Sendable {
        private let waiters = Mutex<[CheckedContinuation<Void, Never>]>([])
        private let requested = Mutex<[Duration]>([])
        var requests: [Duration] { requested.withLock { $0 } }

        func sleep(_ duration: Duration) async throws {
            requested.withLock { $0.append(duration) }
            await withCheckedContinuation { continuation in waiters.withLock { $0.append(continuation) } }
            try Task.checkCancellation()
        }

        func wakeAll() -> Int {
            let all = waiters.withLock { list in defer { list.removeAll() }; return list }
            all.forEach { $0.resume() }
            return all.count
        }
    }

    @Test func savesAtMostOnceAMinuteAndOnShutdown() async throws {
        let clock = ManualClock()
        let store = MemoryFileStore()
        let sleep = HeldSleep()
        let recorder = UsageRecorder(path: "/u.json", store: store, clock: clock, timeZone: TimeZone(identifier: "UTC")!,
                                     sleep: { try await sleep.sleep($0) })
        await recorder.record(UsageRecord(model: "gpt-5.4", inputTokens: 10, outputTokens: 1, time: clock.now()))
        #expect(store.writeCount == 1, "the first record saves at once")
        clock.advance(10)
        await recorder.record(UsageRecord(model: "gpt-5.4", inputTokens: 10, outputTokens: 1, time: clock.now()))
        clock.advance(10)
        await recorder.record(UsageRecord(model: "gpt-5.4", inputTokens: 10, outputTokens: 1, time: clock.now()))
        #expect(store.writeCount == 1, "two records within the minute: no write yet")
        try await waitUntil("the save was scheduled") { !sleep.requests.isEmpty }
        #expect(sleep.requests == [.seconds(50)])
        clock.advance(40)
        try await waitUntil("the scheduled save was woken") { sleep.wakeAll() > 0 }
        try await waitUntil("the second write") { store.writeCount >= 2 }
        let saved = try UsageStatistics(fileData: store["/u.json"]!)
        #expect(saved.combinations.values.first?.total.requestCount == 3)
        await recorder.record(UsageRecord(model: "o3", inputTokens: 1, outputTokens: 1, time: clock.now()))
        await recorder.flush()
        #expect(store.writeCount == 3, "shutdown saves at once")
        #expect(try UsageStatistics(fileData: store["/u.json"]!).combinations.count == 2)
    }

    @Test func corruptFilesAreReportedAndReplaced() async throws {
        let store = MemoryFileStore()
        store["/u.json"] = Data("{{{".utf8)
        let recorder = UsageRecorder(path: "/u.json", store: store, clock: ManualClock())
        let warning = await recorder.load()
        #expect(warning?.hasPrefix("usage statistics /u.json could not be read and will be started afresh") == true)
        await recorder.record(UsageRecord(model: "gpt-5.4", inputTokens: 10, outputTokens: 1, time: t0))
        #expect(try UsageStatistics(fileData: store["/u.json"]!).combinations.count == 1)
    }

    @Test func throttleDecisions() {
        var throttle = SaveThrottle()
        var decisions = [throttle.recordAdded(now: t0)]
        throttle.saveFinished(at: t0, succeeded: true)
        decisions.append(throttle.recordAdded(now: t0 + 30))
        decisions.append(throttle.recordAdded(now: t0 + 40))
        throttle.saveFinished(at: t0 + 60, succeeded: false)
        decisions.append(throttle.recordAdded(now: t0 + 61))
        // A failed save does not count as the minute's save.
        #expect(decisions == [.saveNow, .scheduleAt(t0 + 60), .alreadyScheduled, .saveNow])
    }
}
