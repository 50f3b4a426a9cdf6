import Foundation
@testable import Gateway
import NIOHTTP1
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The ChatGPT-mode surface a current Codex CLI reads its limits from (codex-wire-2026.md §6):
/// the usage answer is the user's pool aggregate, and model requests on the ChatGPT paths are
/// proxied like `/v1/responses`.
@Suite(.timeLimit(.minutes(1))) struct ChatGPTModeTests {
    static let user = GatewayTestBed.User(name: "alice", token: "alice-token", credential: "pool")
    static let auth = [("authorization", "Bearer alice-token"), ("chatgpt-account-id", "codexpool-alice")]

    func json(_ response: UpstreamClient.CollectedResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test func theUsageAnswerIsThePoolsAggregateFieldByField() async throws {
        let now = Date()
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", fiveHourPercent: 49, weeklyPercent: 20, now: now),
            SimulatedAccount(accountID: "b", planType: "pro", fiveHourPercent: 9, weeklyPercent: 30, now: now),
        ], users: [Self.user])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let aggregate = bed.runtime.aggregate(for: AuthenticatedUser(name: "alice", provider: "pool", scope: .nonExternal, viewer: .everyone))
            var answers: [[String: Any]] = []
            for path in ["/backend-api/wham/usage", "/backend-api/codex/usage", "/api/codex/usage"] {
                let response = try await bed.request(.GET, path, headers: Self.auth)
                #expect(response.status == 200, "\(path)")
                answers.append(try json(response))
            }
            let usage = answers[0]
            #expect(usage["plan_type"] as? String == "pro", "the richest plan behind the user")
            #expect(usage["account_id"] as? String == "codexpool-alice")
            let rateLimit = try #require(usage["rate_limit"] as? [String: Any])
            #expect(rateLimit["allowed"] as? Bool == true)
            #expect(rateLimit["limit_reached"] as? Bool == false)
            let primary = try #require(rateLimit["primary_window"] as? [String: Any])
            let secondary = try #require(rateLimit["secondary_window"] as? [String: Any])
            // Integers, as the CLI requires, rounded from the aggregate.
            #expect(primary["used_percent"] as? Int == Int(aggregate.fiveHourUtilization.rounded()))
            #expect(secondary["used_percent"] as? Int == Int(aggregate.weeklyUtilization.rounded()))
            #expect(primary["limit_window_seconds"] as? Int == 18_000)
            #expect(secondary["limit_window_seconds"] as? Int == 604_800)
            #expect(abs((primary["reset_at"] as? Int ?? 0) - Int(aggregate.fiveHourReset!.timeIntervalSince1970.rounded())) <= 1)
            #expect(abs((secondary["reset_at"] as? Int ?? 0) - Int(aggregate.weeklyReset!.timeIntervalSince1970.rounded())) <= 1)
            #expect((primary["reset_after_seconds"] as? Int ?? 0) > 3500)
            // The same answer at every path (a second may pass between the reads: reset times are
            // compared on their own).
            for other in answers.dropFirst() {
                #expect(NSDictionary(dictionary: Self.timeless(other)).isEqual(to: Self.timeless(usage)))
            }

            // After the pool's use changes, the next read shows it.
            bed.simulator.updateAccount("b") { $0.rateLimits.fiveHour?.usedPercent = 80 }
            _ = try await bed.request(headers: [("authorization", "Bearer alice-token"), ("session-id", "s")], json: GatewayTestBed.turnBody)
            let later = try json(try await bed.request(.GET, "/backend-api/wham/usage", headers: Self.auth))
            let laterPrimary = try #require((later["rate_limit"] as? [String: Any])?["primary_window"] as? [String: Any])
            let updated = bed.runtime.aggregate(for: AuthenticatedUser(name: "alice", provider: "pool", scope: .nonExternal, viewer: .everyone))
            #expect(laterPrimary["used_percent"] as? Int == Int(updated.fiveHourUtilization.rounded()))
            #expect(updated.fiveHourUtilization != aggregate.fiveHourUtilization)

            // Only users may ask.
            #expect(try await bed.request(.GET, "/backend-api/wham/usage").status == 401)
        }
    }

    @Test func aWeeklyOnlyPoolAnswersWithTheWeekAsThePrimaryWindow() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", fiveHourPercent: nil, weeklyPercent: 42)], users: [Self.user])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let rateLimit = try #require(try json(try await bed.request(.GET, "/backend-api/wham/usage", headers: Self.auth))["rate_limit"] as? [String: Any])
            let primary = try #require(rateLimit["primary_window"] as? [String: Any])
            #expect(primary["limit_window_seconds"] as? Int == 604_800)
            #expect(primary["used_percent"] as? Int == 43, "42 % of a 99 % cap")
            #expect(rateLimit["secondary_window"] is NSNull)
        }
    }

    @Test func accountsCheckAndResetCreditsAnswerForTheUser() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", planType: "pro")], users: [Self.user])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let check = try json(try await bed.request(.GET, "/backend-api/wham/accounts/check", headers: Self.auth))
            let accounts = try #require(check["accounts"] as? [[String: Any]])
            #expect(accounts.count == 1)
            #expect(accounts.first?["id"] as? String == "codexpool-alice")
            #expect(accounts.first?["plan_type"] as? String == "pro")
            #expect(check["default_account_id"] as? String == "codexpool-alice")
            let credits = try json(try await bed.request(.GET, "/backend-api/wham/rate-limit-reset-credits", headers: Self.auth))
            #expect(credits["available_count"] as? Int == 0)
        }
    }

    @Test func modelRequestsOnTheChatGPTPathsAreProxied() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.user])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let response = try await bed.request(.POST, "/backend-api/codex/responses", headers: Self.auth, json: GatewayTestBed.turnBody)
            #expect(response.status == 200)
            let upstream = try #require(bed.simulator.modelRequests.last)
            #expect(upstream.path == "/backend-api/codex/responses")
            #expect(upstream.header("chatgpt-account-id") == "a", "the credential's account, not the one codexpool gave the user")

            let client = try await TestWebSocketClient.connect(port: bed.server.port, path: "/backend-api/codex/responses", headers: Self.auth)
            guard case .upgraded = client.outcome else { Issue.record("not upgraded: \(String(describing: client.outcome))"); return }
            let events = try await client.warmUpAndTurn()
            #expect(events.last?["type"] as? String == "response.completed")
            client.close()
        }
    }

    /// The answer without the seconds counting down to the resets.
    /// One `additional_rate_limits` entry per other limit family the pool's accounts report,
    /// aggregated by plan, for the ChatGPT sign-in and the plain user token alike.
    @Test func otherLimitFamiliesAreListedOncePerFamily() async throws {
        let now = Date()
        var a = SimulatedAccount(accountID: "a", planType: "pro", fiveHourPercent: 10, weeklyPercent: 20, now: now)
        var b = SimulatedAccount(accountID: "b", planType: "plus", fiveHourPercent: 10, weeklyPercent: 20, now: now)
        let reset = Int(now.timeIntervalSince1970) + 1800
        a.rateLimits.extraLimits = [.init(id: "codex-bengalfox", name: "gpt-5.2-codex-sonic", fiveHour: .init(usedPercent: 10, windowMinutes: 300, resetAt: reset))]
        b.rateLimits.extraLimits = [.init(id: "codex-bengalfox", name: "gpt-5.2-codex-sonic", fiveHour: .init(usedPercent: 65, windowMinutes: 300, resetAt: reset))]
        let bed = try await GatewayTestBed.start(accounts: [a, b], users: [Self.user])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let response = try await bed.request(.GET, "/backend-api/wham/usage", headers: [("authorization", "Bearer alice-token")])
            let usage = try json(response)
            let extra = try #require(usage["additional_rate_limits"] as? [[String: Any]])
            #expect(extra.count == 1)
            #expect(extra.first?["limit_name"] as? String == "gpt-5.2-codex-sonic")
            #expect(extra.first?["metered_feature"] as? String == "codex_bengalfox")
            let window = try #require((extra.first?["rate_limit"] as? [String: Any])?["primary_window"] as? [String: Any])
            #expect(window["used_percent"] as? Int == 15, "(10·10 + 65·1) / 11")
            #expect(window["limit_window_seconds"] as? Int == 18_000)
            #expect(window["reset_at"] as? Int == reset)
        }
    }

    static func timeless(_ answer: [String: Any]) -> [String: Any] {
        var copy = answer
        if var rateLimit = copy["rate_limit"] as? [String: Any] {
            for key in ["primary_window", "secondary_window"] {
                if var window = rateLimit[key] as? [String: Any] {
                    window["reset_after_seconds"] = nil
                    window["reset_at"] = nil
                    rateLimit[key] = window
                }
            }
            copy["rate_limit"] = rateLimit
        }
        return copy
    }
}
