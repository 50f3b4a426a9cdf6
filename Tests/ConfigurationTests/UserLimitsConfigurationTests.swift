import Configuration
import Foundation
import PoolCore
import Testing

/// `users[].limits`.
@Suite(.timeLimit(.minutes(1))) struct UserLimitsConfigurationTests {
    static let base = """
        credentials:
          - {tag: a, credential_path: a.json}
        users:
          - name: bob
            token: bob-token
        """

    @Test func anySubsetOfLimitsIsRead() throws {
        let configuration = try loadConfiguration(Self.base + """

                limits: {requests_per_day: 500, tokens_per_week: 20000000, cost_per_day: 2.5, cost_per_month: 200, max_concurrent_sessions: 4}
            """)
        let limits = try #require(configuration.users.first?.limits)
        #expect(limits == UserLimits(requestsPerDay: 500, tokensPerWeek: 20_000_000, costPerDay: 2.5, costPerMonth: 200, maxConcurrentSessions: 4))
        #expect(try loadConfiguration(Self.base).users.first?.limits.isEmpty == true)
    }

    @Test func mistakesAreNamedWithTheirPlace() {
        #expect(configurationIssues(Self.base + "\n    limits: {requests_per_hour: 5}").contains { $0.contains("test.yaml:6:") && $0.contains("requests_per_hour") })
        #expect(configurationIssues(Self.base + "\n    limits: {cost_per_day: -1}").contains { $0.contains("must be zero or more") })
        #expect(configurationIssues(Self.base + "\n    limits: {max_concurrent_sessions: 0}").contains { $0.contains("must be at least 1") })
        #expect(configurationIssues(Self.base + "\n    limits: {tokens_per_day: lots}").contains { $0.contains("expected a whole number") })
    }
}
