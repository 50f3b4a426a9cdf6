import Configuration
import Foundation
@testable import Gateway
import NIOHTTP1
import PoolCore
import Storage
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The admin API through a running balancer with the simulator and a real SQLite history:
/// after a known mix of requests, the counts, outcomes, tokens and costs are exactly those.
@Suite(.timeLimit(.minutes(2))) struct AdminAPITests {
    static let ops = GatewayTestBed.User(name: "ops", token: "ops-token-0001", credential: "pool", isAdmin: true)
    static let alice = GatewayTestBed.User(name: "alice", token: "alice-token-0001", credential: "pool")
    static let bob = GatewayTestBed.User(name: "bob", token: "bob-token-0001", credential: "pool")
    static let carl = GatewayTestBed.User(name: "carl", token: "carl-token-0001", credential: "c")
    static let dan = GatewayTestBed.User(name: "dan", token: "dan-token-0001", credential: "d")
    static let secrets = [ops, alice, bob, carl, dan].map(\.token) + ["access-a", "access-b", "access-c", "access-d", "refresh-a", "refresh-b"]

    /// a: pro and fresh but answers 429; b: answers; c: answers 500; d: stalls mid-answer.
    static func startBed(storagePath: String) async throws -> GatewayTestBed {
        let now = Date()
        return try await GatewayTestBed.start(
            accounts: [
                SimulatedAccount(accountID: "a", planType: "pro", fiveHourPercent: 1, weeklyPercent: 1, now: now, behavior: .rateLimited),
                SimulatedAccount(accountID: "b", planType: "plus", fiveHourPercent: 20, weeklyPercent: 20, now: now),
                SimulatedAccount(accountID: "c", behavior: .failing(status: 500)),
                SimulatedAccount(accountID: "d", behavior: .stallMidStream),
            ],
            balancer: nil, users: [ops, alice, bob, carl, dan], pools: [BalancerDefinition(tag: "pool", members: ["a", "b"], strategy: .leastUsed)],
            storage: StorageConfiguration(enabled: true, path: storagePath))
    }

    func get(_ bed: GatewayTestBed, _ path: String, as user: GatewayTestBed.User) async throws -> UpstreamClient.CollectedResponse {
        try await bed.request(.GET, "/api/v1/" + path, headers: [("authorization", "Bearer \(user.token)")])
    }

    func json(_ response: UpstreamClient.CollectedResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response.text)")
    }

    @Test func theHistoryHoldsExactlyTheRequestsMadeAndOnlyTheirOwnersSeeThem() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-admin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storagePath = folder.appendingPathComponent("history.sqlite3").path
        let bed = try await Self.startBed(storagePath: storagePath)
        var answers: [String] = []
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b", "c", "d"])
            // alice: a refuses (429), b answers. bob: straight to b (a is marked). carl: c answers 500.
            for (user, session) in [(Self.alice, "s-alice"), (Self.bob, "s-bob"), (Self.carl, "s-carl")] {
                _ = try await bed.request(headers: [("authorization", "Bearer \(user.token)"), ("session-id", session)], json: GatewayTestBed.turnBody)
            }
            // dan leaves while d is answering.
            let connection = try await RawConnection(port: bed.server.port)
            try await connection.sendTurn(authorization: "Bearer \(Self.dan.token)")
            _ = await connection.readUntil("response.created")
            connection.close()
            try await waitUntil("dan's request is over") { bed.runtime.metrics.levels.inFlight == 0 }
            bed.runtime.history?.recorder.flush()

            let overview = try json(try await get(bed, "overview?window=15m", as: Self.ops))
            answers.append(try await get(bed, "overview?window=15m", as: Self.ops).text)
            #expect(overview["requests"] as? Int == 4)
            #expect(overview["failures"] as? Int == 2)
            #expect(overview["outcomes"] as? [String: Int] == ["completed": 2, "upstream_error": 1, "client_disconnected": 1])
            #expect(overview["failovers"] as? Int == 1)
            let account = try #require(bed.simulator.account("b"))
            let tokens = try #require(overview["tokens"] as? [String: Int])
            #expect(tokens["input"] == 2 * account.inputTokens && tokens["output"] == 2 * account.outputTokens)
            let oneTurnCost = GatewayRuntime.cost(of: try #require(CompletedUsage.sample(input: account.inputTokens, cached: account.cachedTokens,
                                                                                          output: account.outputTokens, model: "gpt-5.5")), model: nil)
            #expect(abs((overview["cost_usd"] as? Double ?? 0) - 2 * oneTurnCost) < 1e-12)
            #expect(oneTurnCost > 0)

            let requests = try json(try await get(bed, "requests?limit=10", as: Self.ops))
            let rows = try #require(requests["data"] as? [[String: Any]])
            #expect(rows.map { $0["user"] as? String } == ["dan", "carl", "bob", "alice"], "newest first")
            let alice = try #require(rows.last)
            #expect(alice["credential"] as? String == "b")
            #expect(alice["failovers"] as? Int == 1)
            #expect(alice["outcome"] as? String == "completed" && alice["status"] as? Int == 200)
            #expect(alice["model"] as? String == "gpt-5.5")
            #expect((alice["ttfb_ms"] as? Double ?? -1) >= 0)
            let carl = rows[1]
            #expect(carl["outcome"] as? String == "upstream_error" && carl["status"] as? Int == 500 && carl["credential"] as? String == "c")
            #expect(rows[0]["outcome"] as? String == "client_disconnected" && rows[0]["credential"] as? String == "d")

            let usage = try json(try await get(bed, "usage?group_by=user", as: Self.ops))
            let byUser = Dictionary(uniqueKeysWithValues: try #require(usage["data"] as? [[String: Any]]).map { ($0["key"] as? String ?? "", $0) })
            #expect(Set(byUser.keys) == ["alice", "bob", "carl", "dan"])
            #expect((byUser["alice"]?["tokens"] as? [String: Int])?["input"] == account.inputTokens)
            #expect((byUser["carl"]?["tokens"] as? [String: Int])?["input"] == 0)
            let csv = try await get(bed, "usage.csv?group_by=credential", as: Self.ops)
            #expect(csv.header("content-type")?.hasPrefix("text/csv") == true)
            #expect(csv.text.hasPrefix("credential,requests,failures,input_tokens"))
            #expect(csv.text.contains("\nb,2,0,\(2 * account.inputTokens),"))

            // A user sees their own rows and the pool, no one else's, and may not act.
            let own = try json(try await get(bed, "requests", as: Self.alice))
            #expect((own["data"] as? [[String: Any]])?.compactMap { $0["user"] as? String } == ["alice"])
            #expect(try await get(bed, "requests?user=bob", as: Self.alice).status == 403)
            let ownUsage = try json(try await get(bed, "usage?group_by=user", as: Self.alice))
            #expect((ownUsage["data"] as? [[String: Any]])?.compactMap { $0["key"] as? String } == ["alice"])
            #expect(try json(try await get(bed, "overview", as: Self.alice))["requests"] as? Int == 1)
            let refused = try await bed.request(.POST, "/api/v1/credentials/b/disable", headers: [("authorization", "Bearer \(Self.alice.token)")])
            #expect(refused.status == 403)
            #expect(try await get(bed, "overview", as: GatewayTestBed.User(name: "x", token: "wrong", credential: "pool")).status == 401)

            // An admin disables b: no new sessions there, and everyone's status says why.
            let disable = try await bed.request(.POST, "/api/v1/credentials/b/disable", headers: [("authorization", "Bearer \(Self.ops.token)")])
            #expect(disable.status == 200, "\(disable.text)")
            let credentials = try json(try await get(bed, "credentials", as: Self.ops))
            let b = try #require((credentials["data"] as? [[String: Any]])?.first { $0["tag"] as? String == "b" })
            #expect(b["enabled"] as? Bool == false)
            #expect(b["why_not"] as? String == "disabled by admin")
            let status = try await bed.request(.GET, "/ocm/v1/status?detail=true", headers: [("authorization", "Bearer \(Self.ops.token)")])
            #expect(status.text.contains("\"unusable_reason\":\"disabled by admin\""), "what codexpool status shows: \(status.text)")
            let refusedTurn = try await bed.request(headers: [("authorization", "Bearer \(Self.bob.token)"), ("session-id", "s-new")], json: GatewayTestBed.turnBody)
            #expect(refusedTurn.status != 200, "a and b are both out")
            #expect(refusedTurn.text.contains("disabled by admin"), "\(refusedTurn.text)")
            for path in ["credentials", "requests?limit=50", "usage?group_by=credential", "series?metric=requests"] {
                answers.append(try await get(bed, path, as: Self.ops).text)
            }
        }
        // Restarted on the same file: the rows and the admin's change are still there.
        let again = try await Self.startBed(storagePath: storagePath)
        try await again.stopAfter { () async throws in
            let credentials = try json(try await get(again, "credentials", as: Self.ops))
            #expect((credentials["data"] as? [[String: Any]])?.first { $0["tag"] as? String == "b" }?["enabled"] as? Bool == false)
            #expect((try json(try await get(again, "overview?window=1h", as: Self.ops)))["requests"] as? Int == 5, "four, plus the refused one")
            let enable = try await again.request(.POST, "/api/v1/credentials/b/enable", headers: [("authorization", "Bearer \(Self.ops.token)")])
            #expect(enable.status == 200)
        }
        // No secret anywhere: not in an answer, not in the database file.
        let database = try Data(contentsOf: URL(fileURLWithPath: storagePath)) + ((try? Data(contentsOf: URL(fileURLWithPath: storagePath + "-wal"))) ?? Data())
        let databaseText = String(decoding: database, as: UTF8.self)
        for secret in Self.secrets {
            #expect(!answers.contains { $0.contains(secret) }, "\(secret) in an API answer")
            #expect(!databaseText.contains(secret), "\(secret) in the database")
        }
    }

    @Test func theDashboardIsOneSelfContainedPage() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.ops])
        try await bed.stopAfter { () async throws in
            let page = try await bed.request(.GET, "/dashboard")
            #expect(page.status == 200)
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            #expect(page.header("content-security-policy")?.contains("default-src 'none'") == true)
            #expect(page.text.contains("<title>codexpool dashboard</title>"))
            // The SVG namespace is a name, not a fetch; nothing else absolute is in the page.
            let withoutNamespace = page.text.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
            #expect(!withoutNamespace.contains("http://") && !withoutNamespace.contains("https://") && !withoutNamespace.contains("//cdn"), "no external fetches")
            // Without storage the history answers say so; the pool's state still works.
            #expect(try await get(bed, "overview", as: Self.ops).status == 503)
            #expect(try await get(bed, "credentials", as: Self.ops).status == 200)
            #expect(try await get(bed, "nothing", as: Self.ops).status == 404)
            #expect(try await bed.request(.DELETE, "/api/v1/overview", headers: [("authorization", "Bearer \(Self.ops.token)")]).status == 405)
        }
    }
}

extension CompletedUsage {
    /// A usage as a completed event reports it.
    static func sample(input: Int, cached: Int, output: Int, model: String) -> CompletedUsage? {
        let event = #"{"type":"response.completed","response":{"model":"\#(model)","usage":{"input_tokens":\#(input),"input_tokens_details":{"cached_tokens":\#(cached)},"output_tokens":\#(output)}}}"#
        guard case (.completed(let usage), _) = WebSocketEventRewriter.kind(of: Array(event.utf8)) else { return nil }
        return usage
    }
}
