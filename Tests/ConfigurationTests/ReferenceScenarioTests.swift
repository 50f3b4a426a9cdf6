import Configuration
import PoolCore
import Testing

/// The configuration scenarios of ocm-reference.md §12.
@Suite(.timeLimit(.minutes(1))) struct ReferenceScenarioTests {
    func balancer(strategy: String, threshold: String = "0") -> String {
        "credentials:\n  - tag: a\n  - tag: p\n    type: balancer\n    credentials: [a]\n    strategy: \(strategy)\n    rebalance_threshold: \(threshold)\nusers: []\n"
    }

    @Test("Scenario 1: strategy spellings, an unknown strategy, a negative rebalance threshold")
    func strategySpellings() {
        for accepted in ["least-used", "round-robin", "least_used", "round_robin"] {
            #expect(configurationIssues(balancer(strategy: accepted)) == [], "\(accepted)")
        }
        #expect(configurationIssues(balancer(strategy: "foo")) == [
            #"test.yaml:6:5: credentials[1].strategy: unknown balancer strategy "foo" (expected least-used, round-robin, random or fallback)"#,
        ])
        #expect(configurationIssues(balancer(strategy: "least-used", threshold: "-1")) == [
            "test.yaml:7:5: credentials[1].rebalance_threshold: must not be negative, got -1",
        ])
    }

    @Test("Scenario 2: mutual exclusions, reserve and limit ranges, default caps of 99")
    func mutualExclusion() throws {
        #expect(configurationIssues("credential_path: /a.json\ncredentials:\n  - tag: a\n").count == 1)
        #expect(configurationIssues("credentials:\n  - tag: a\n    reserve_5h: 10\n    limit_5h: 80\n").count == 1)
        #expect(configurationIssues("credentials:\n  - tag: a\n    reserve_5h: 100\n").count == 1)
        #expect(configurationIssues("credentials:\n  - tag: a\n    limit_weekly: 101\n").count == 1)
        let configuration = try loadConfiguration("credentials:\n  - tag: a\n    reserve_5h: 0\n    reserve_weekly: 0\n")
        guard case .local(let local) = configuration.credentials[0] else {
            Issue.record("expected a local credential")
            return
        }
        #expect(local.caps.fiveHourCapPercent == 99 && local.caps.weeklyCapPercent == 99)
    }

    @Test("Scenario 3: users need a credential among several, not with one; external_credential must be external")
    func userValidation() {
        #expect(configurationIssues("credentials:\n  - tag: a\n  - tag: b\nusers:\n  - name: u\n    token: t\n").count == 1)
        #expect(configurationIssues("credentials:\n  - tag: a\nusers:\n  - name: u\n    token: t\n") == [])
        #expect(configurationIssues("credentials:\n  - tag: a\nusers:\n  - name: u\n    token: t\n    external_credential: a\n").count == 1)
    }
}
