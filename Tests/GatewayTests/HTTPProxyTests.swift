import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

@Suite(.timeLimit(.minutes(1))) struct HTTPProxyTests {
    @Test func streamsTheAnswerWithAggregatedHeadersAndRecordsUsage() async throws {
        let now = Date()
        // a: plus (weight 1), 5 h 49 %; b: pro (weight 10), 5 h 9 %. Caps 99 → 5 h = 100 − (50·1 + 90·10)/11.
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", fiveHourPercent: 49, weeklyPercent: 20, now: now),
            SimulatedAccount(accountID: "b", planType: "pro", fiveHourPercent: 9, weeklyPercent: 20, now: now),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let response = try await bed.request(headers: [("session-id", "s1"), ("x-forwarded-for", "10.0.0.9"), ("authorization", "Bearer client")],
                                                 json: GatewayTestBed.turnBody)
            #expect(response.status == 200)
            #expect(response.text.contains("event: response.completed"))
            #expect(response.text.contains("Hello from b."))
            let expectedFiveHour = 100 - (50.0 * 1 + 90 * 10) / 11
            #expect(response.header("x-codex-primary-used-percent") == String(format: "%.2f", expectedFiveHour))
            #expect(response.header("x-codex-secondary-used-percent") == "21.00")
            #expect(response.header("x-ocm-plan-weight") == "11")
            #expect(response.header("x-codex-plan-type") == nil)
            #expect(response.header("x-codex-credits-balance") == nil)

            let upstream = try #require(bed.simulator.modelRequests.last)
            #expect(upstream.accountID == "b")
            #expect(upstream.header("authorization") == "Bearer access-b")
            #expect(upstream.header("chatgpt-account-id") == "b")
            #expect(upstream.header("x-forwarded-for") == nil)
            #expect(upstream.header("session-id") == "s1")

            let statistics = try await waitForUsage(bed, tag: "b")
            #expect(statistics.combinations.values.first?.total.inputTokens == 120)
        }
    }

    /// Requests sent back to back without waiting (HTTP/1.1 pipelining) are answered in order,
    /// each whole: a proxied turn, one the gateway answers itself, another turn.
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", planType: "plus")])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let body = GatewayTestBed.turnBody
            let turn = "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let status = "GET /ocm/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
            let last = "POST /v1/responses HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let answers = try await RawSocket.exchange(port: bed.server.port, bytes: Array((turn + status + last).utf8))
            let heads = answers.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(heads.count == 3)
            #expect(heads.allSatisfy { $0.hasPrefix("200 OK") })
            let parts = Array(heads)
            guard parts.count == 3 else { return }
            #expect(parts[0].lowercased().contains("content-type: text/event-stream") && parts[0].contains("event: response.completed"))
            #expect(parts[1].lowercased().contains("content-type: application/json") && !parts[1].contains("event: "))
            #expect(parts[2].contains("event: response.completed"))
            #expect(bed.simulator.modelRequests.count == 2)
        }
    }

    @Test func keepsASessionOnItsCredential() async throws {
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", weeklyPercent: 10),
            SimulatedAccount(accountID: "b", planType: "plus", weeklyPercent: 12),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            _ = try await bed.request(headers: [("session-id", "sticky")], json: GatewayTestBed.turnBody)
            let first = try #require(bed.simulator.modelRequests.last?.accountID)
            // Make the chosen account look worse; the session must stay (rebalancing is off).
            bed.simulator.updateAccount(first) { $0.rateLimits.weekly.usedPercent = 60 }
            for _ in 0..<3 {
                let response = try await bed.request(headers: [("session-id", "sticky")], json: GatewayTestBed.turnBody)
                #expect(response.status == 200)
                #expect(bed.simulator.modelRequests.last?.accountID == first)
            }
            // A new session goes to the less used account.
            _ = try await bed.request(headers: [("session-id", "other")], json: GatewayTestBed.turnBody)
            #expect(bed.simulator.modelRequests.last?.accountID != first)
        }
    }

    @Test func prefersTheBetterPlanByRemainingCapacity() async throws {
        // Scenario 17: a plus at 10 % vs b pro at 70 % weekly: b wins (29·10 > 89·1).
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", weeklyPercent: 10, weeklyResetIn: 150 * 3600),
            SimulatedAccount(accountID: "b", planType: "pro", weeklyPercent: 70, weeklyResetIn: 150 * 3600),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            for index in 0..<4 {
                _ = try await bed.request(headers: [("session-id", "s\(index)")], json: GatewayTestBed.turnBody)
            }
            #expect(bed.simulator.modelRequests.allSatisfy { $0.accountID == "b" })
        }
    }

    @Test func failsOverOn429BeforeTheFirstByte() async throws {
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "pro", weeklyPercent: 0, behavior: .rateLimited),
            SimulatedAccount(accountID: "b", planType: "plus", weeklyPercent: 50),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let response = try await bed.request(headers: [("session-id", "s")], json: GatewayTestBed.turnBody)
            #expect(response.status == 200)
            #expect(response.text.contains("Hello from b."))
            #expect(bed.simulator.modelRequests.map(\.accountID) == ["a", "b"])
            // The same body was replayed.
            #expect(bed.simulator.modelRequests.map(\.body) == [Data(GatewayTestBed.turnBody.utf8), Data(GatewayTestBed.turnBody.utf8)])
            let a = try #require(bed.runtime.credentialStates.first { $0.tag == "a" })
            #expect(!a.usability(now: Date()).isUsable)
        }
    }

    @Test func answers429WhenEveryCredentialIsLimited() async throws {
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", behavior: .rateLimited),
            SimulatedAccount(accountID: "b", behavior: .rateLimited),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let response = try await bed.request(json: GatewayTestBed.turnBody)
            #expect(response.status == 429)
            let error = try #require(GatewayJSON.parse(response.body)?["error"])
            #expect(error["type"]?.stringValue == "usage_limit_reached")
            #expect(error["message"]?.stringValue?.hasPrefix("all credentials rate-limited") == true)
        }
    }

    @Test func refusesBadClients() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil,
                                                 users: [.init(name: "ann", token: "user-token", credential: "a")])
        try await bed.stopAfter { () async throws in
            let cases: [([(String, String)], Int, String)] = [
                ([], 401, "missing api key"),
                ([("authorization", "Basic abc")], 401, "invalid api key format"),
                ([("authorization", "Bearer wrong")], 401, "invalid api key"),
                ([("authorization", "Bearer user-token"), ("x-api-key", "k")], 400,
                 "API key authentication is not supported; use Authorization: Bearer with an OCM user token"),
            ]
            for (headers, status, message) in cases {
                let response = try await bed.request(headers: headers, json: GatewayTestBed.turnBody)
                #expect(response.status == status)
                #expect(GatewayJSON.parse(response.body)?["error"]?["message"]?.stringValue == message)
            }
            let notFound = try await bed.request(.GET, "/elsewhere", headers: [("authorization", "Bearer user-token")])
            #expect(notFound.status == 404)
            #expect(GatewayJSON.parse(notFound.body)?["error"]?["message"]?.stringValue == "path must start with /v1/")
            let statusPost = try await bed.request(.POST, "/ocm/v1/status", headers: [("authorization", "Bearer user-token")])
            #expect(statusPost.status == 405)
            let statusWithoutToken = try await bed.request(.GET, "/ocm/v1/status")
            #expect(statusWithoutToken.status == 401)
            let statusWithToken = try await bed.request(.GET, "/ocm/v1/status", headers: [("authorization", "Bearer user-token")])
            #expect(statusWithToken.status == 200)
            #expect(bed.simulator.modelRequests.isEmpty)
            let served = try await bed.request(headers: [("authorization", "Bearer user-token")], json: GatewayTestBed.turnBody)
            #expect(served.status == 200)
        }
    }

    @Test func answersMalformedHTTPWith400() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        try await bed.stopAfter { () async throws in
            let reply = try await RawSocket.exchange(port: bed.server.port, bytes: Array("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n".utf8))
            #expect(reply.hasPrefix("HTTP/1.1 400"))
            #expect(reply.contains("malformed HTTP request"))
        }
    }

    /// A chunked request body reaches upstream whole (framed by its length); a request whose
    /// framing could be read two ways is refused, not guessed at.
    @Test func chunkedBodiesArePassedOnAndAmbiguousFramingIsRefused() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let body = Array(GatewayTestBed.turnBody.utf8)
            let head = "POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer user-token\r\nContent-Type: application/json\r\n"
            let chunked = head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "10\r\n\(String(decoding: body.prefix(16), as: UTF8.self))\r\n"
                + "\(String(body.count - 16, radix: 16))\r\n\(String(decoding: body.dropFirst(16), as: UTF8.self))\r\n0\r\n\r\n"
            let reply = try await RawSocket.exchange(port: bed.server.port, bytes: Array(chunked.utf8))
            #expect(reply.hasPrefix("HTTP/1.1 200"))
            #expect(reply.contains("response.completed"))
            #expect(bed.simulator.modelRequests.last.map { Array($0.body) } == body)

            let ambiguous = head + "Content-Length: \(body.count)\r\nTransfer-Encoding: chunked\r\n\r\n" + GatewayTestBed.turnBody
            let refused = try await RawSocket.exchange(port: bed.server.port, bytes: Array(ambiguous.utf8))
            #expect(refused.hasPrefix("HTTP/1.1 400"))
            #expect(refused.contains("both content-length and transfer-encoding"))
            #expect(bed.simulator.modelRequests.count == 1)
        }
    }

    /// Bodies that arrive in pieces on a kept-alive connection reach upstream as sent, each
    /// request's own (the first piece of a body is kept as a slice of what was read, not copied,
    /// and the next request is read into the same connection's buffer).
    @Test func bodiesArrivingInPiecesOnAKeptAliveConnectionGoUpstreamAsSent() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let connection = try await RawConnection(port: bed.server.port)
            defer { connection.close() }
            var bodies: [[UInt8]] = []
            for text in ["first", "the second, a little longer"] {
                let body = Array(GatewayTestBed.turnBody.replacingOccurrences(of: #""hi""#, with: "\"\(text)\"").utf8)
                bodies.append(body)
                let head = "POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer user-token\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.count)\r\n\r\n"
                // The head with the body's start, then the rest: one read or two, the same bytes either way.
                try await connection.send(Array(head.utf8) + body.prefix(20))
                try await connection.send(Array(body.dropFirst(20)))
                let answer = await connection.readUntil("\r\n0\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
                #expect(answer.contains("response.completed"))
            }
            #expect(bed.simulator.modelRequests.count == 2)
            #expect(bed.simulator.modelRequests.map { Array($0.body) } == bodies)
        }
    }

    @Test func cutsTheClientStreamWhenUpstreamDies() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", behavior: .dropMidStream)], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            await #expect(throws: UpstreamError.self) {
                _ = try await bed.request(json: GatewayTestBed.turnBody)
            }
            // The gateway is still healthy afterwards.
            bed.simulator.updateAccount("a") { $0.behavior = .normal }
            #expect(try await bed.request(json: GatewayTestBed.turnBody).status == 200)
        }
    }

    @Test func releasesUpstreamWhenTheClientLeavesMidStream() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", behavior: .stallMidStream)], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let connection = try await RawConnection(port: bed.server.port)
            try await connection.sendTurn()
            #expect(await connection.readUntil("response.created").hasPrefix("HTTP/1.1 200"))
            connection.close()
            // The gateway drops its upstream connection, which the simulator sees as an abandoned stream.
            try await bed.simulator.waitUntil { $0.abandonedStreams >= 1 }
        }
    }

    @Test func servesOverInboundTLSAndReachesUpstreamThroughTheClient() async throws {
        let certificates = TestCertificates.shared
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil,
                                                 tls: InboundTLSConfiguration(certificatePath: certificates.serverCertificate, keyPath: certificates.serverKey))
        try await bed.stopAfter { () async throws in
            let context = try OpenSSLContext.client(TLSClientConfiguration(caFilePath: certificates.caFile))
            let target = UpstreamTarget(host: "127.0.0.1", port: bed.server.port, tls: context, serverName: "localhost")
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            let response = try await bed.client.collect(target, method: HTTPMethod.POST, path: "/v1/responses", headers: headers,
                                                        body: Array(GatewayTestBed.turnBody.utf8), on: GatewayTestBed.group.next()).get()
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self).contains("Hello from a."))
        }
    }

    @Test func refreshesAnExpiredTokenAtTheTokenEndpoint() async throws {
        let expired = SimulatedAccount.accessTokenJWT(accountID: "a", planType: "plus", expiresAt: Date().addingTimeInterval(-60))
        let bed = try await GatewayTestBed.start(
            accounts: [SimulatedAccount(accountID: "a", accessToken: "never-used")], balancer: nil,
            authFiles: ["a": SimulatedAccount.authJSON(access: expired, refresh: "refresh-a", accountID: "a")])
        try await bed.stopAfter { () async throws in
            let response = try await bed.request(json: GatewayTestBed.turnBody)
            #expect(response.status == 200)
            #expect(bed.simulator.requests.contains { $0.path == "/oauth/token" })
            let saved = try String(contentsOf: bed.folder.appendingPathComponent("a.json"), encoding: .utf8)
            #expect(!saved.contains(expired))
            #expect(saved.contains("refresh-a-"))
            let attributes = try FileManager.default.attributesOfItem(atPath: bed.folder.appendingPathComponent("a.json").path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect(bed.simulator.modelRequests.last?.header("authorization")?.hasPrefix("Bearer ey") == true)
        }
    }

    @Test func aCredentialFileMendedOnDiskServesOnceItIsDueForAReread() async throws {
        let clock = SettableClock(Date())
        let account = SimulatedAccount(accountID: "a")
        let bed = try await GatewayTestBed.start(accounts: [account], balancer: nil, authFiles: ["a": "not json"], clock: clock)
        try await bed.stopAfter { () async throws in
            let refused = try await bed.request(json: GatewayTestBed.turnBody)
            #expect(refused.status != 200, "\(refused.text)")
            try account.authJSON().write(to: bed.folder.appendingPathComponent("a.json"), atomically: true, encoding: .utf8)
            // Re-read at most every two seconds: not yet.
            #expect(try await bed.request(json: GatewayTestBed.turnBody).status != 200)
            clock.set(clock.now().addingTimeInterval(PoolPolicy.credentialReloadInterval + 1))
            let served = try await bed.request(json: GatewayTestBed.turnBody)
            #expect(served.status == 200, "\(served.text)")
            #expect(served.header("x-codexpool-credential") == "a")
        }
    }

    @Test func statusEndpointAndWatchStream() async throws {
        let now = Date()
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", fiveHourPercent: 49, weeklyPercent: 30, now: now),
            SimulatedAccount(accountID: "b", planType: "pro", fiveHourPercent: 9, weeklyPercent: 30, now: now),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let status = try await bed.request(.GET, "/ocm/v1/status")
            #expect(status.status == 200)
            let parsed = try AggregateStatus(statusJSON: Data(status.body))
            #expect(abs(parsed.fiveHourUtilization - (100 - (50.0 + 900) / 11)) < 1e-9)
            #expect(parsed.planWeight == 11)
            #expect(status.text.hasSuffix("}\n"))

            let watch = try await NDJSONWatch(port: bed.server.port, path: "/ocm/v1/status?watch=true")
            let first = try await watch.nextLine()
            #expect(try AggregateStatus(statusJSON: Data(first.utf8)) == parsed)
            // A response that leaves the numbers as they are produces no frame; one that moves b's
            // 5-hour use (b, the pro account, takes new sessions) produces exactly one.
            _ = try await bed.request(headers: [("session-id", "x")], json: GatewayTestBed.turnBody)
            bed.simulator.updateAccount("b") { $0.rateLimits.fiveHour?.usedPercent = 30 }
            _ = try await bed.request(headers: [("session-id", "y")], json: GatewayTestBed.turnBody)
            let second = try AggregateStatus(statusJSON: Data(try await watch.nextLine().utf8))
            #expect(abs(second.fiveHourUtilization - (100 - (50.0 + 69 * 10) / 11)) < 1e-9)
            watch.close()
        }
    }
}

/// Waits until the gateway's first usage polls have given every credential data; every poll
/// result is a status notification, so this wakes on events only.
func waitForData(_ bed: GatewayTestBed, tags: [String]) async {
    let changes = bed.runtime.statusSignal.subscribe()
    func ready() -> Bool {
        let states = bed.runtime.credentialStates
        return tags.allSatisfy { tag in states.first { $0.tag == tag }?.usage.hasData == true }
    }
    if ready() { return }
    for await _ in changes where ready() { return }
}

func waitForUsage(_ bed: GatewayTestBed, tag: String) async throws -> UsageStatistics {
    for _ in 0..<2000 {
        if let statistics = await bed.runtime.usageStatistics(tag), !statistics.combinations.isEmpty { return statistics }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw UpstreamError(.timeout, "no usage recorded for \(tag)")
}
