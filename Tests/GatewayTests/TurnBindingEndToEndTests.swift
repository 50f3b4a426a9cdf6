import Foundation
@testable import Gateway
import PoolCore
import Synchronization
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// A turn stays on the account that started it (codex-wire-2026.md §1), with the real Codex
/// CLIs: the model asks for a shell command, Codex runs it and sends the output back in the same
/// turn. The simulator scopes turn-state, response ids and encrypted reasoning to the account
/// that issued them and refuses them anywhere else, so a follow-up that went astray would fail.
@Suite(.timeLimit(.minutes(3))) struct TurnBindingEndToEndTests {
    static let userToken = "turn-user-token"
    static let toolOutput = "codexpool-tool-ran"

    /// a: pro, barely used (chosen first); b: plus, half used. Both reason and ask for a tool.
    static func startBed() async throws -> GatewayTestBed {
        let now = Date()
        var a = SimulatedAccount(accountID: "a", planType: "pro", fiveHourPercent: 5, weeklyPercent: 5, now: now)
        var b = SimulatedAccount(accountID: "b", planType: "plus", fiveHourPercent: 50, weeklyPercent: 50, now: now)
        for index in [0, 1] {
            var account = index == 0 ? a : b
            account.reasons = true
            account.toolCommand = "echo \(toolOutput)"
            if index == 0 { a = account } else { b = account }
        }
        return try await GatewayTestBed.start(
            accounts: [a, b], balancer: nil, users: [.init(name: "cli", token: userToken, credential: "pool")],
            pools: [BalancerDefinition(tag: "pool", members: ["a", "b"], strategy: .leastUsed, rebalanceThreshold: 10)])
    }

    static func home(_ bed: GatewayTestBed, webSocket: Bool) throws -> URL {
        try CodexCLI.makeHome(baseURL: "http://127.0.0.1:\(bed.server.port)/v1", token: userToken, webSocket: webSocket, retries: 3, runsTools: true)
    }

    /// The requests of the turn that carried the tool's output back.
    static func followUps(_ bed: GatewayTestBed) -> [SimulatedRequest] {
        bed.simulator.modelRequests.filter { String(decoding: $0.body, as: UTF8.self).contains("function_call_output") }
    }

    @Test(arguments: CodexCLI.Version.allCases, [true, false])
    func aToolCallTurnCompletes(version: CodexCLI.Version, webSocket: Bool) async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let home = try Self.home(bed, webSocket: webSocket)
            defer { try? FileManager.default.removeItem(at: home) }
            let run = try await CodexCLI.exec("run the tool", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(run.stdout.contains("Hello from a."), "\(run.stdout)")
            let followUps = Self.followUps(bed)
            #expect(!followUps.isEmpty, "Codex sent the tool's output back")
            #expect(followUps.allSatisfy { String(decoding: $0.body, as: UTF8.self).contains(Self.toolOutput) }, "Codex ran the command")
            #expect(bed.simulator.modelRequests.allSatisfy { $0.accountID == "a" })
            #expect(bed.simulator.refusedContinuations == 0)
        }
    }

    static let user = AuthenticatedUser(name: "cli", provider: "pool", scope: .nonExternal, viewer: .everyone)

    /// a at 97 % in both windows, as upstream would report it (still usable: the cap is 99 %).
    static let aNearlyUsedUp = RateLimitSnapshot(headers: [
        ("x-codex-primary-used-percent", "97"), ("x-codex-primary-window-minutes", "300"),
        ("x-codex-secondary-used-percent", "97"), ("x-codex-secondary-window-minutes", "10080"),
    ])

    /// Between the tool call and its follow-up, a is nearly used up and the session is
    /// rebalanced to b: the follow-up still goes to a (its turn-state and reasoning are a's), and
    /// the session's next turn goes to b — without a's reasoning, which b would refuse.
    @Test(arguments: CodexCLI.Version.allCases, [true, false])
    func aRebalanceBetweenToolCallAndFollowUpLeavesTheTurnOnItsAccount(version: CodexCLI.Version, webSocket: Bool) async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let rebalanced = Mutex<String?>(nil)
            bed.simulator.whenToolCalled { account, sessionID in
                guard account == "a", let sessionID else { return }
                bed.runtime.observe(Self.aNearlyUsedUp, tag: "a")
                let moved = try? bed.runtime.select(for: Self.user, sessionID: sessionID).get().tag
                rebalanced.withLock { $0 = moved }
            }
            let home = try Self.home(bed, webSocket: webSocket)
            defer { try? FileManager.default.removeItem(at: home) }
            let run = try await CodexCLI.exec("run the tool", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(rebalanced.withLock { $0 } == "b", "the session was rebalanced between the tool call and its follow-up")
            #expect(run.stdout.contains("Hello from a."), "\(run.stdout)")
            let followUps = Self.followUps(bed)
            #expect(!followUps.isEmpty)
            #expect(followUps.allSatisfy { $0.accountID == "a" }, "the follow-up stayed on a: \(followUps.map(\.accountID))")
            #expect(bed.simulator.refusedContinuations == 0)

            // The next turn of the session: the rebalance takes effect.
            bed.simulator.whenToolCalled { _, _ in }
            let before = bed.simulator.modelRequests.count
            let next = try await CodexCLI.exec("and now?", home: home, version: version, resume: true)
            #expect(next.status == 0, "codex failed: \(next.stderr)\n\(next.stdout)")
            let turn = bed.simulator.modelRequests.dropFirst(before).filter { !$0.isWarmUp }
            #expect(!turn.isEmpty && turn.allSatisfy { $0.accountID == "b" }, "the next turn went to b: \(turn.map(\.accountID))")
            #expect(next.stdout.contains("Hello from b."), "\(next.stdout)")
            #expect(bed.simulator.refusedContinuations == 0, "b never saw a's state")
        }
    }

    /// a runs out between the tool call and its follow-up: the follow-up cannot finish there,
    /// Codex resends the turn (told the response is gone) and b finishes it without a's state.
    @Test(arguments: CodexCLI.Version.allCases, [true, false])
    func aTurnWhoseAccountRunsOutMidTurnFinishesOnAnother(version: CodexCLI.Version, webSocket: Bool) async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            bed.simulator.whenToolCalled { account, _ in
                guard account == "a" else { return }
                bed.simulator.updateAccount("a") { $0.rateLimits.weekly.usedPercent = 100 }
            }
            let home = try Self.home(bed, webSocket: webSocket)
            defer { try? FileManager.default.removeItem(at: home) }
            let run = try await CodexCLI.exec("run the tool", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(run.stdout.contains("Hello from b."), "\(run.stdout)")
            let finished = Self.followUps(bed).filter { $0.accountID == "b" }
            #expect(!finished.isEmpty, "b got the tool's output")
            #expect(bed.simulator.refusedContinuations == 0, "b never saw a's state")
        }
    }

    /// The backend's cap on one WebSocket (60 minutes; here two answers) hits the follow-up:
    /// the wrapped error reaches Codex as the backend sends it, Codex reconnects, the turn
    /// finishes on the same account, and each answer is booked once.
    @Test(arguments: CodexCLI.Version.allCases)
    func theWebSocketCapMidTurnReconnectsToTheSameAccount(version: CodexCLI.Version) async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            bed.simulator.updateAccount("a") { $0.answersPerWebSocket = 2 }
            let home = try Self.home(bed, webSocket: true)
            defer { try? FileManager.default.removeItem(at: home) }
            let run = try await CodexCLI.exec("run the tool", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(run.stdout.contains("Hello from a."), "\(run.stdout)")
            #expect(bed.simulator.modelRequests.allSatisfy { $0.accountID == "a" })
            let upgrades = bed.simulator.requests.filter { $0.method == "UPGRADE" }
            #expect(upgrades.count >= 2, "Codex reconnected after the cap")
            #expect(bed.simulator.refusedContinuations == 0)
            // Booked once per answer: the tool call and the reply (the capped request made none).
            let metrics = try PrometheusText(String(decoding: bed.runtime.metricsExposition(), as: UTF8.self))
            let account = try #require(bed.simulator.account("a"))
            #expect(metrics.value("codexpool_tokens_total", ["credential": "a", "user": "cli", "kind": "input"]) == Double(2 * account.inputTokens))
        }
    }
}
