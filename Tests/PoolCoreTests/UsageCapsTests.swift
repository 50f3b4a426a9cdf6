import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct UsageCapsTests {
    @Test func defaultReserveIsOnePercent() {
        #expect(UsageCaps().fiveHourCapPercent == 99)
        #expect(UsageCaps().weeklyCapPercent == 99)
        #expect(UsageCapSetting.reserve(0).capPercent == 99)
        #expect(UsageCapSetting.reserve(1).capPercent == 99)
    }

    @Test func reserveAndLimitSetTheCap() {
        #expect(UsageCapSetting.reserve(10).capPercent == 90)
        #expect(UsageCapSetting.reserve(99).capPercent == 1)
        #expect(UsageCapSetting.limit(80).capPercent == 80)
        #expect(UsageCapSetting.limit(100).capPercent == 100)
        #expect(UsageCaps.external.weeklyCapPercent == 100)
    }
}

@Suite(.timeLimit(.minutes(1))) struct BalancerStrategyTests {
    @Test(arguments: [
        ("least-used", BalancerStrategy.leastUsed), ("least_used", .leastUsed), ("LEAST-USED", .leastUsed),
        ("round-robin", .roundRobin), ("round_robin", .roundRobin), ("random", .random), ("fallback", .fallback),
    ])
    func acceptsBothSpellings(name: String, strategy: BalancerStrategy) {
        #expect(BalancerStrategy(configurationName: name) == strategy)
    }

    @Test func rejectsUnknownNames() {
        #expect(BalancerStrategy(configurationName: "fastest") == nil)
        #expect(BalancerStrategy(configurationName: "") == nil)
    }
}
