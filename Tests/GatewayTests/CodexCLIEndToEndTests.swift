import Foundation
@testable import Gateway
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The real Codex CLI through the balancer against the simulator (codex-client.md).
@Suite(.timeLimit(.minutes(2))) struct CodexCLIEndToEndTests {
    static let userToken = "e2e-user-token"

    /// a: plus, 5 h 30 %, week 40 %; b: pro, 5 h 10 %, week 20 %. With caps of 99:
    /// 5 h = 100 − (69·1 + 89·10)/11 = 12.82 %, week = 100 − (59·1 + 79·10)/11 = 22.82 %.
    static func accounts(now: Date) -> [SimulatedAccount] {
        [SimulatedAccount(accountID: "a", planType: "plus", fiveHourPercent: 30, weeklyPercent: 40, now: now),
         SimulatedAccount(accountID: "b", planType: "pro", fiveHourPercent: 10, weeklyPercent: 20, now: now)]
    }

    @Test(arguments: CodexCLI.Version.allCases, [true, false])
    func aTurnArrivesAndTheCLIRecordsTheAggregate(version: CodexCLI.Version, webSocket: Bool) async throws {
        let bed = try await GatewayTestBed.start(accounts: Self.accounts(now: Date()), users: [.init(name: "cli", token: Self.userToken, credential: "pool")])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            // The backend refuses anything that is not a Codex request of either generation.
            bed.simulator.checkCodexRequests()
            let home = try CodexCLI.makeHome(baseURL: "http://127.0.0.1:\(bed.server.port)/v1", token: Self.userToken, webSocket: webSocket)
            defer { try? FileManager.default.removeItem(at: home) }

            let run = try await CodexCLI.exec("say hi", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(run.stdout.contains("Hello from b."), "\(run.stdout)")
            #expect(!run.stdout.contains("Falling back from WebSockets"))

            let transports = Set(bed.simulator.modelRequests.map(\.transport))
            #expect(transports == [webSocket ? .webSocket : .http])
            try Self.expectRequestShape(of: version, in: bed.simulator.modelRequests)
            #expect(bed.simulator.modelRequests.allSatisfy { $0.accountID == "b" })

            let limits = try #require(try run.recordedRateLimits, "no rate limits in the rollout")
            let primary = try #require(limits["primary"] as? [String: Any])
            let secondary = try #require(limits["secondary"] as? [String: Any])
            #expect(primary["used_percent"] as? Double == 12.82)
            #expect(secondary["used_percent"] as? Double == 22.82)
            #expect(primary["window_minutes"] as? Int == 300)
            #expect(secondary["window_minutes"] as? Int == 10080)
            let status = bed.runtime.aggregate(for: AuthenticatedUser(name: "cli", provider: "pool", scope: .nonExternal, viewer: .everyone))
            let expectedReset = Int((status.fiveHourReset ?? .distantPast).timeIntervalSince1970.rounded())
            #expect(abs((primary["resets_at"] as? Int ?? 0) - expectedReset) <= 1)
        }
    }

    /// A long answer over the WebSocket, which the CLI asks to compress (permessage-deflate):
    /// its short events reach the CLI uncompressed and its long ones (the whole text) compressed,
    /// and the CLI reads the mix.
    @Test(arguments: CodexCLI.Version.allCases)
    func aLongAnswerOverTheWebSocketArrivesWhole(version: CodexCLI.Version) async throws {
        let reply = (0..<400).map { "word\($0)" }.joined(separator: " ") + "."
        let account = SimulatedAccount(accountID: "a", planType: "pro", reply: reply, deltaCount: 50)
        let bed = try await GatewayTestBed.start(accounts: [account], users: [.init(name: "cli", token: Self.userToken, credential: "pool")])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let home = try CodexCLI.makeHome(baseURL: "http://127.0.0.1:\(bed.server.port)/v1", token: Self.userToken, webSocket: true)
            defer { try? FileManager.default.removeItem(at: home) }
            let run = try await CodexCLI.exec("say a lot", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(run.stdout.contains(reply), "\(run.stdout)")
            #expect(!run.stdout.contains("Falling back from WebSockets"))
            #expect(Set(bed.simulator.modelRequests.map(\.transport)) == [.webSocket])
        }
    }

    @Test(arguments: CodexCLI.Version.allCases, [true, false])
    func turnsSucceedWhenOneAccountIsExhausted(version: CodexCLI.Version, webSocket: Bool) async throws {
        // a looks best (pro, nearly unused) but answers every request with 429.
        let now = Date()
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "pro", fiveHourPercent: 1, weeklyPercent: 1, now: now, behavior: .rateLimited),
            SimulatedAccount(accountID: "b", planType: "plus", fiveHourPercent: 50, weeklyPercent: 50, now: now),
        ], users: [.init(name: "cli", token: Self.userToken, credential: "pool")])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let home = try CodexCLI.makeHome(baseURL: "http://127.0.0.1:\(bed.server.port)/v1", token: Self.userToken, webSocket: webSocket)
            defer { try? FileManager.default.removeItem(at: home) }
            for turn in 1...2 {
                let run = try await CodexCLI.exec("turn \(turn)", home: home, version: version)
                #expect(run.status == 0, "turn \(turn): \(run.stderr)\n\(run.stdout)")
                #expect(run.stdout.contains("Hello from b."))
                #expect(!run.stdout.contains("Falling back from WebSockets"))
            }
            #expect(bed.simulator.modelRequests.allSatisfy { $0.accountID == "b" || $0.accountID == "a" })
            #expect(bed.simulator.modelRequests.filter { $0.accountID == "b" }.count >= 2)
        }
    }

    /// What each CLI generation sends, as it reached upstream through the balancer: 0.147 puts
    /// the instructions in `instructions`; 0.163 sends none and starts `input` with the base
    /// instructions, and adds `x-codex-beta-features` and `x-codex-turn-metadata`.
    static func expectRequestShape(of version: CodexCLI.Version, in requests: [SimulatedRequest]) throws {
        let turn = try #require(requests.last { !$0.isWarmUp })
        let body = try #require(try JSONSerialization.jsonObject(with: turn.body) as? [String: Any])
        let shape = CodexRequestShape.classify(body)
        switch version {
        case .v0_147:
            #expect(body["instructions"] is String, "0.147 sends instructions")
        case .v0_163:
            #expect(body["instructions"] == nil, "0.163 sends no instructions")
            if case .success(let found) = shape { #expect(found == .baseInstructionsItem || body["previous_response_id"] is String) }
            let metadata: String? = if turn.transport == .http {
                turn.header("x-codex-turn-metadata")
            } else {
                (body["client_metadata"] as? [String: Any])?["x-codex-turn-metadata"] as? String
            }
            let parsed = try #require(metadata.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any],
                                      "x-codex-turn-metadata reached upstream as JSON")
            #expect(parsed["turn_id"] is String)
            if turn.transport == .http { #expect(turn.header("x-codex-beta-features") != nil) }
        }
        if case .failure(let problem) = shape { Issue.record("the turn is not a Codex request: \(problem)") }
    }
}
