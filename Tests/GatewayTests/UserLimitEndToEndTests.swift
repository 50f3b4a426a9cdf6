import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import PoolCore
import Storage
import Synchronization
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// A clock the test sets; the gateway's windows follow it.
final class SettableClock: PoolClock, Sendable {
    private let current: Mutex<Date>

    init(_ start: Date) {
        current = Mutex(start)
    }

    func now() -> Date { current.withLock { $0 } }
    func set(_ date: Date) { current.withLock { $0 = date } }
}

/// `users[].limits` through a running balancer: each limit kind stops requests exactly at its
/// value and lets them through again in the next window; WebSocket handshakes and turns are
/// refused alike; sessions are capped; and the count survives a restart.
@Suite(.timeLimit(.minutes(3))) struct UserLimitEndToEndTests {
    /// Wednesday 2026-12-09 13:30:00 UTC; the simulator's own times do not matter here.
    static let start = Date(timeIntervalSince1970: 1_796_823_000)
    static let account = SimulatedAccount(accountID: "a", inputTokens: 40_000, outputTokens: 2_000)
    static var tokensPerTurn: Int { account.inputTokens + account.outputTokens }
    static var costPerTurn: Double {
        PricingTable.bundled.listCost(model: "gpt-5.5", serviceTier: nil, inputTokens: account.inputTokens, cachedTokens: 0, outputTokens: account.outputTokens)
    }

    static func limits(_ kind: UserLimitKind, turns: Int) -> UserLimits {
        var limits = UserLimits()
        let tokens = turns * tokensPerTurn
        let cost = Double(turns) * costPerTurn
        switch kind {
        case .requestsPerDay: limits.requestsPerDay = turns
        case .tokensPerDay: limits.tokensPerDay = tokens
        case .tokensPerWeek: limits.tokensPerWeek = tokens
        case .costPerDay: limits.costPerDay = cost
        case .costPerWeek: limits.costPerWeek = cost
        case .costPerMonth: limits.costPerMonth = cost
        }
        return limits
    }

    static func bed(limits: UserLimits, clock: SettableClock, storage: StorageConfiguration = .disabled) async throws -> GatewayTestBed {
        try await GatewayTestBed.start(accounts: [account], balancer: nil, users: [
            .init(name: "bob", token: "bob-token", credential: "a", limits: limits),
            .init(name: "ops", token: "ops-token", credential: "a", isAdmin: true),
        ], storage: storage, clock: clock)
    }

    static func turn(_ bed: GatewayTestBed, token: String = "bob-token", session: String = "s1") async throws -> UpstreamClient.CollectedResponse {
        try await bed.request(headers: [("authorization", "Bearer \(token)"), ("session-id", session)], json: GatewayTestBed.turnBody)
    }

    @Test(arguments: UserLimitKind.allCases)
    func httpStopsExactlyAtTheLimitAndGoesOnInTheNextWindow(kind: UserLimitKind) async throws {
        let clock = SettableClock(Self.start)
        let bed = try await Self.bed(limits: Self.limits(kind, turns: 2), clock: clock)
        try await bed.stopAfter {
            for _ in 0..<2 {
                let answer = try await Self.turn(bed)
                #expect(answer.status == 200)
                #expect(answer.text.contains("response.completed"))
            }
            let refused = try await Self.turn(bed)
            #expect(refused.status == 429)
            let error = try #require(JSONValue.parse(refused.body)?["error"])
            let end = kind.window.end(containing: Self.start)
            #expect(error["type"]?.stringValue == "usage_limit_reached")
            #expect(error["code"]?.stringValue == "user_limit_reached")
            #expect(error["limit"]?.stringValue == kind.rawValue)
            #expect(error["resets_at"]?.numberValue == end.timeIntervalSince1970)
            #expect(error["message"]?.stringValue?.hasPrefix("user bob reached \(kind.rawValue): ") == true, "\(refused.text)")
            #expect(refused.header("retry-after") == String(Int(end.timeIntervalSince(Self.start))))
            #expect(bed.simulator.modelRequests.count == 2, "a refused request never reaches a credential")
            // Others are not limited by bob's use; bob is again once the window has turned.
            #expect(try await Self.turn(bed, token: "ops-token").status == 200)
            clock.set(end - 1)
            #expect(try await Self.turn(bed).status == 429)
            clock.set(end)
            #expect(try await Self.turn(bed).status == 200)
        }
    }

    @Test func webSocketHandshakesAndTurnsAreRefusedAlike() async throws {
        let clock = SettableClock(Self.start)
        let bed = try await Self.bed(limits: UserLimits(requestsPerDay: 1), clock: clock)
        try await bed.stopAfter {
            let headers = [("authorization", "Bearer bob-token"), ("session-id", "ws-1")]
            let socket = try await TestWebSocketClient.connect(port: bed.server.port, headers: headers)
            defer { socket.close() }
            let first = try await socket.warmUpAndTurn()
            #expect(first.last?["type"] as? String == "response.completed", "the warm-up does not count, the turn does")
            let responseID = try #require((first.last?["response"] as? [String: Any])?["id"] as? String)
            try await socket.send(WebSocketProxyTests.turn(after: responseID))
            let refusal = try #require(await socket.nextMessage())
            #expect(refusal["type"] as? String == "error")
            #expect(refusal["status_code"] as? Int == 429)
            let error = try #require(refusal["error"] as? [String: Any])
            #expect(error["type"] as? String == "usage_limit_reached")
            #expect(error["limit"] as? String == "requests_per_day")
            #expect(error["resets_at"] as? Int == Int(CalendarWindow.day.end(containing: Self.start).timeIntervalSince1970))
            #expect(bed.simulator.modelRequests.count == 2, "the warm-up and the first turn; the refused turn never went upstream")
            // A new connection is refused at the handshake, with the same answer an HTTP request gets.
            let second = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer bob-token"), ("session-id", "ws-2")])
            guard case .refused(let head, let body) = second.outcome else {
                Issue.record("the handshake was not refused")
                return
            }
            #expect(head.status == .tooManyRequests)
            #expect(body.contains("requests_per_day"))
            let http = try await Self.turn(bed)
            #expect(http.status == 429)
        }
    }

    @Test func concurrentSessionsAreCappedAndFreedWhenOneEnds() async throws {
        let clock = SettableClock(Self.start)
        let bed = try await Self.bed(limits: UserLimits(maxConcurrentSessions: 1), clock: clock)
        try await bed.stopAfter {
            let socket = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer bob-token"), ("session-id", "one")])
            guard case .upgraded = socket.outcome else {
                Issue.record("the first session was refused")
                return
            }
            // Another session is one too many, over HTTP or WebSocket; the open one's own requests are not.
            let other = try await Self.turn(bed, session: "two")
            #expect(other.status == 429)
            let error = try #require(JSONValue.parse(other.body)?["error"])
            #expect(error["limit"]?.stringValue == "max_concurrent_sessions")
            #expect(error["type"]?.stringValue == "rate_limit_exceeded")
            #expect(other.header("retry-after") == nil)
            let refused = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer bob-token"), ("session-id", "two")])
            if case .refused(let head, _) = refused.outcome { #expect(head.status == .tooManyRequests) } else { Issue.record("second session upgraded") }
            #expect(try await Self.turn(bed, session: "one").status == 200)
            #expect(try await Self.turn(bed, token: "ops-token", session: "two").status == 200, "another user's sessions are theirs")
            socket.close()
            let book = bed.runtime.userLimits
            try await waitUntil("the session's end is seen") { book.standing("bob", now: Self.start).sessions == 0 }
            #expect(try await Self.turn(bed, session: "two").status == 200)
        }
    }

    @Test func theCountSurvivesARestartAndTheUsageAPIShowsIt() async throws {
        let clock = SettableClock(Self.start)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-limits-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = StorageConfiguration(enabled: true, path: folder.appendingPathComponent("history.sqlite3").path)
        let limits = UserLimits(requestsPerDay: 2, tokensPerWeek: 10 * Self.tokensPerTurn)
        let first = try await Self.bed(limits: limits, clock: clock, storage: storage)
        try await first.stopAfter { () async throws in
            #expect(try await Self.turn(first).status == 200)
            #expect(try await Self.turn(first).status == 200)
        }
        // A new process, the same store: bob's day is used up.
        let second = try await Self.bed(limits: limits, clock: clock, storage: storage)
        try await second.stopAfter {
            let refused = try await Self.turn(second)
            #expect(refused.status == 429)
            #expect(JSONValue.parse(refused.body)?["error"]?["limit"]?.stringValue == "requests_per_day")
            let usage = try await second.request(.GET, "/api/v1/usage", headers: [("authorization", "Bearer bob-token")])
            #expect(usage.status == 200)
            let entries = try #require(JSONValue.parse(usage.body)?["limits"]?.arrayValue)
            #expect(entries.count == 1, "bob sees only himself")
            let bob = try #require(entries.first)
            #expect(bob["user"]?.stringValue == "bob")
            #expect(bob["today"]?["requests"]?.numberValue == 2)
            #expect(bob["today"]?["tokens"]?.numberValue == Double(2 * Self.tokensPerTurn))
            let perDay = try #require(bob["limits"]?.arrayValue?.first { $0["limit"]?.stringValue == "requests_per_day" })
            #expect(perDay["used"]?.numberValue == 2)
            #expect(perDay["value"]?.numberValue == 2)
            #expect(perDay["reached"]?.boolValue == true)
            let perWeek = try #require(bob["limits"]?.arrayValue?.first { $0["limit"]?.stringValue == "tokens_per_week" })
            #expect(perWeek["used"]?.numberValue == Double(2 * Self.tokensPerTurn))
            #expect(perWeek["reached"]?.boolValue == false)
            let admin = try await second.request(.GET, "/api/v1/usage", headers: [("authorization", "Bearer ops-token")])
            #expect(JSONValue.parse(admin.body)?["limits"]?.arrayValue?.count == 2)
        }
    }
}
