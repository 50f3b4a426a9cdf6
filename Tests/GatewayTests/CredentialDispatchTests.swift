import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import PoolCore
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// Every path of the credential dispatch, once over HTTP and once as a WebSocket upgrade, with
/// the same pool behind each: both transports must give the same answer.
@Suite(.timeLimit(.minutes(2))) struct CredentialDispatchTests {
    enum Transport: String, CaseIterable { case http, webSocket }

    /// What the client got: served by an account, or an answer instead.
    enum Outcome: Equatable, CustomStringConvertible {
        case served(account: String)
        case answered(status: UInt, body: String)

        /// Times in answers ("retrying after …") differ by when each transport ran.
        var comparable: Outcome {
            guard case .answered(let status, let body) = self else { return self }
            return .answered(status: status, body: body.replacing(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/, with: "<time>"))
        }

        var description: String {
            switch self {
            case .served(let account): "served by \(account)"
            case .answered(let status, let body): "\(status) \(body)"
            }
        }
    }

    static let user = GatewayTestBed.User(name: "alice", token: "alice-token", credential: "pool")
    static let headers = [("authorization", "Bearer alice-token"), ("session-id", "dispatch-1")]

    /// One request or upgrade (plus a turn, for an upgrade) against `bed`.
    static func send(_ transport: Transport, to bed: GatewayTestBed, headers: [(String, String)] = headers) async throws -> Outcome {
        switch transport {
        case .http:
            let response = try await bed.request(headers: headers, json: GatewayTestBed.turnBody)
            guard response.status == 200 else { return .answered(status: UInt(response.status), body: response.text) }
            return .served(account: bed.simulator.modelRequests.last?.accountID ?? "?")
        case .webSocket:
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: headers)
            defer { client.close() }
            switch client.outcome {
            case .upgraded:
                let events = try await client.warmUpAndTurn()
                #expect(events.last?["type"] as? String == "response.completed")
                return .served(account: bed.simulator.modelRequests.last?.accountID ?? "?")
            case .refused(let head, let body):
                return .answered(status: head.status.code, body: body)
            case nil:
                return .answered(status: 0, body: "no outcome")
            }
        }
    }

    /// Runs `scenario` on a fresh bed per transport and checks both answers are `expected`.
    static func bothTransports(accounts: @escaping @Sendable () -> [SimulatedAccount], balancer: BalancerStrategy? = .leastUsed,
                               prepare: @Sendable (GatewayTestBed) async throws -> Void = { _ in },
                               check: @Sendable (GatewayTestBed, Transport) async throws -> Void = { _, _ in },
                               expected: (Outcome) -> Bool) async throws {
        var outcomes: [Transport: Outcome] = [:]
        for transport in Transport.allCases {
            let list = accounts()
            let bed = try await GatewayTestBed.start(accounts: list, balancer: balancer,
                                                     users: [.init(name: "alice", token: "alice-token", credential: balancer == nil ? list[0].accountID : "pool")])
            do {
                await waitForData(bed, tags: list.map(\.accountID))
                try await prepare(bed)
                let outcome = try await send(transport, to: bed)
                outcomes[transport] = outcome
                #expect(expected(outcome), "\(transport): \(outcome)")
                try await check(bed, transport)
            } catch {
                await bed.stop()
                throw error
            }
            await bed.stop()
        }
        #expect(outcomes[.http]?.comparable == outcomes[.webSocket]?.comparable, "HTTP \(outcomes[.http]!) ≠ WebSocket \(outcomes[.webSocket]!)")
    }

    /// Model requests (HTTP) or upgrades (WebSocket) the simulator received.
    static func attempts(_ bed: GatewayTestBed, _ transport: Transport) -> [SimulatedRequest] {
        bed.simulator.requests.filter { $0.path.hasSuffix("/responses") && $0.method == (transport == .http ? "POST" : "UPGRADE") }
    }

    static func tokenRefreshes(_ bed: GatewayTestBed) -> Int {
        bed.simulator.requests.filter { $0.path == "/oauth/token" }.count
    }

    @Test func aRateLimitedCredentialFailsOverToTheNext() async throws {
        try await Self.bothTransports(accounts: {
            [SimulatedAccount(accountID: "a", planType: "pro", behavior: .rateLimited), SimulatedAccount(accountID: "b", planType: "plus", weeklyPercent: 50)]
        }, check: { bed, transport in
            #expect(Self.attempts(bed, transport).compactMap(\.accountID) == ["a", "b"])
            #expect(bed.runtime.credentialStates.first { $0.tag == "a" }?.usage.isRateLimited(now: Date()) == true)
        }, expected: { $0 == .served(account: "b") })
    }

    @Test func a401RefreshesTheTokenOnceAndSucceeds() async throws {
        try await Self.bothTransports(accounts: { [SimulatedAccount(accountID: "a")] }, balancer: nil, prepare: { bed in
            // The backend stops taking the token the gateway holds; its refresh token still works.
            bed.simulator.updateAccount("a") { $0.accessTokens = ["access-a-rotated"] }
        }, check: { bed, transport in
            #expect(Self.tokenRefreshes(bed) == 1)
            #expect(Self.attempts(bed, transport).map { $0.header("authorization") == "Bearer access-a" } == [true, false])
            let saved = try String(contentsOfFile: bed.folder.appendingPathComponent("a.json").path, encoding: .utf8)
            #expect(saved.contains("refresh-a-"), "the rotated refresh token is on disk")
        }, expected: { $0 == .served(account: "a") })
    }

    @Test func a401AfterTheRefreshReachesTheClientAsUpstreamSentIt() async throws {
        try await Self.bothTransports(accounts: { [SimulatedAccount(accountID: "a")] }, balancer: nil, prepare: { bed in
            bed.simulator.updateAccount("a") { $0.behavior = .unauthorized }
        }, check: { bed, transport in
            #expect(Self.tokenRefreshes(bed) == 1, "one refresh, not a loop")
            #expect(Self.attempts(bed, transport).count == 2)
        }, expected: {
            guard case .answered(401, let body) = $0 else { return false }
            return body.contains("token_invalidated")
        })
    }

    @Test func aTokenThatCannotBeRefreshedGives503AndMovesToAnotherCredentialWhenThereIsOne() async throws {
        // One credential: nothing else to try.
        try await Self.bothTransports(accounts: { [SimulatedAccount(accountID: "a")] }, balancer: nil, prepare: { bed in
            bed.simulator.updateAccount("a") {
                $0.accessTokens = ["access-a-rotated"]
                $0.refreshToken = "refresh-a-elsewhere"
            }
        }, check: { bed, _ in
            #expect(Self.tokenRefreshes(bed) == 1)
        }, expected: {
            guard case .answered(503, let body) = $0 else { return false }
            return body.contains("\"code\":\"credential_unavailable\"") && body.contains("credential a cannot be used") && !body.contains("refresh-a")
        })
        // A pool: the session moves to the other credential.
        try await Self.bothTransports(accounts: {
            [SimulatedAccount(accountID: "a", planType: "pro"), SimulatedAccount(accountID: "b", planType: "plus", weeklyPercent: 50)]
        }, prepare: { bed in
            bed.simulator.updateAccount("a") {
                $0.accessTokens = ["access-a-rotated"]
                $0.refreshToken = "refresh-a-elsewhere"
            }
        }, expected: { $0 == .served(account: "b") })
    }

    @Test func attemptsStopAtTheCap() async throws {
        let count = PoolPolicy.maximumAttempts + 1
        try await Self.bothTransports(accounts: {
            (1...count).map { SimulatedAccount(accountID: "a\($0)", planType: "plus", weeklyPercent: Double($0), behavior: .rateLimited) }
        }, check: { bed, transport in
            #expect(Self.attempts(bed, transport).count == PoolPolicy.maximumAttempts)
        }, expected: {
            guard case .answered(let status, let body) = $0 else { return false }
            return status == 400 && body.contains("is rate-limited")
        })
    }

    @Test func aPeerThatRefusesOurTokenRestsAndTheClientLearnsWhy() async throws {
        var outcomes: [Outcome] = []
        for transport in Transport.allCases {
            // The peer passes on its backend's 400 (as an instance that refuses us would answer).
            let remote = try await GatewayTestBed.start(
                accounts: [SimulatedAccount(accountID: "remote", behavior: .failing(status: 400))], balancer: nil,
                users: [.init(name: "peer", token: "peer-token", credential: "remote")])
            // The peer knows its account's use before we ask (else its status reads "used up").
            await waitForData(remote, tags: ["remote"])
            let url = EndpointURL(parsing: "http://127.0.0.1:\(remote.server.port)")!
            let local = try await GatewayTestBed.start(
                accounts: [], balancer: nil, users: [.init(name: "alice", token: "alice-token", credential: "far", allowExternalUsage: true)],
                externals: [ExternalCredentialConfiguration(tag: "far", token: Secret("peer-token"), mode: .forward(url))], simulator: remote.simulator)
            await waitForData(local, tags: ["far"])
            let outcome = try await Self.send(transport, to: local)
            outcomes.append(outcome)
            let state = local.runtime.credentialStates.first { $0.tag == "far" }
            #expect(state?.usage.isUpstreamRejected(now: Date()) == true, "\(transport)")
            await local.stop()
            await remote.stop()
        }
        #expect(outcomes.count == 2 && outcomes[0].comparable == outcomes[1].comparable, "\(outcomes)")
        guard case .answered(400, let body) = outcomes.first else { Issue.record("\(outcomes)"); return }
        #expect(body.contains("upstream rejected credential far"))
    }

    @Test func aClientThatLeavesWhileWaitingEndsTheUpstreamAttempt() async throws {
        for transport in Transport.allCases {
            let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil, users: [.init(name: "alice", token: "alice-token", credential: "a")])
            await waitForData(bed, tags: ["a"])
            bed.simulator.updateAccount("a") { $0.answerDelayMilliseconds = 60_000 }
            let before = bed.simulator.snapshot.closedConnections
            let connection = try await RawConnection(port: bed.server.port)
            switch transport {
            case .http:
                try await connection.sendTurn(authorization: "Bearer alice-token")
            case .webSocket:
                try await connection.send(Array(("GET /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nConnection: Upgrade\r\n"
                    + "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").utf8))
            }
            // Upstream has the request and sits on it; then the client goes.
            try await bed.simulator.waitUntil { $0.modelAttempts == 1 }
            connection.close()
            try await bed.simulator.waitUntil { $0.closedConnections > before }
            let metrics = try await bed.waitForScrape {
                $0.value("codexpool_responses_total", ["transport": transport == .http ? "http" : "websocket", "outcome": "client_disconnected"]) == 1
            }
            #expect(metrics.value("codexpool_responses_total", ["transport": transport == .http ? "http" : "websocket", "outcome": "client_disconnected"]) == 1)
            await bed.stop()
        }
    }
}
