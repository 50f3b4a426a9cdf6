import Configuration
import Foundation
@testable import Gateway
import NIOHTTP1
import PoolCore
import Testing
import TestSupport
import UpstreamHTTP
import UpstreamSimulator

@Suite(.timeLimit(.minutes(1))) struct MetricsTests {
    static let alice = GatewayTestBed.User(name: "alice", token: "alice-token", credential: "pool")

    private func scrape(_ bed: GatewayTestBed, token: String? = nil) async throws -> PrometheusText {
        let response = try await bed.request(.GET, "/metrics", headers: token.map { [("authorization", "Bearer \($0)")] } ?? [])
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return try PrometheusText(response.text)
    }

    @Test func countersMoveWithHTTPAndWebSocketTraffic() async throws {
        let account = SimulatedAccount(accountID: "b", planType: "plus", fiveHourPercent: 30, weeklyPercent: 40, cachedTokens: 20)
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "pro", weeklyPercent: 0, behavior: .rateLimited), account,
        ], users: [Self.alice])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let before = try await scrape(bed)
            #expect(before.types["codexpool_responses_total"] == nil)
            #expect(before.value("codexpool_credential_usable", ["credential": "b"]) == 1)
            #expect(before.value("codexpool_credential_plan_weight", ["credential": "a"]) == 10)

            // One HTTP turn: a answers 429, the request fails over to b.
            let alice = [("authorization", "Bearer alice-token"), ("session-id", "s1")]
            #expect(try await bed.request(headers: alice, json: GatewayTestBed.turnBody).status == 200)
            // One refused request and one unknown path.
            #expect(try await bed.request(json: GatewayTestBed.turnBody).status == 401)
            #expect(try await bed.request(.GET, "/nope").status == 404)
            // One WebSocket session: a warm-up (not counted) and a turn.
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer alice-token"), ("session-id", "ws")])
            let events = try await client.warmUpAndTurn()
            #expect(events.last?["type"] as? String == "response.completed")
            let during = try await scrape(bed)
            #expect(during.value("codexpool_websocket_sessions_open") == 1)
            client.close()

            let after = try await bed.waitForScrape { $0.value("codexpool_websocket_sessions_open") == 0 }
            #expect(after.value("codexpool_http_responses_total", ["route": "responses", "status": "200", "credential": "b", "user": "alice"]) == 1)
            #expect(after.value("codexpool_http_responses_total", ["route": "responses", "status": "401", "user": ""]) == 1)
            #expect(after.value("codexpool_http_responses_total", ["route": "not_found", "status": "404"]) == 1)
            #expect(after.value("codexpool_http_responses_total", ["route": "responses", "status": "101", "credential": "b", "user": "alice"]) == 1)
            // Scrapes count too (at least the two above; waiting for the close may take more).
            #expect((after.value("codexpool_http_responses_total", ["route": "metrics", "status": "200"]) ?? 0) >= 2)
            #expect(after.value("codexpool_upstream_rate_limited_total", ["credential": "a"]) == 1)
            #expect(after.value("codexpool_failovers_total", ["credential": "a"]) == 1)
            #expect(after.value("codexpool_responses_total", ["transport": "http", "outcome": "completed", "credential": "b", "user": "alice"]) == 1)
            #expect(after.value("codexpool_responses_total", ["transport": "websocket", "outcome": "completed", "credential": "b", "user": "alice"]) == 1)
            #expect(after.value("codexpool_responses_total", ["transport": "websocket"]) == 1)
            #expect(after.value("codexpool_time_to_first_byte_seconds_count", ["transport": "http"]) == 1)
            #expect(after.value("codexpool_time_to_first_byte_seconds_count", ["transport": "websocket"]) == 1)
            #expect(after.value("codexpool_response_duration_seconds_count", ["transport": "websocket"]) == 1)
            #expect(after.value("codexpool_http_requests_in_flight") == 0)
            #expect(after.value("codexpool_websocket_sessions_total", ["credential": "b", "user": "alice"]) == 1)
            // b's usage per turn, twice (HTTP and WebSocket).
            #expect(after.value("codexpool_tokens_total", ["credential": "b", "user": "alice", "kind": "input"]) == Double(2 * account.inputTokens))
            #expect(after.value("codexpool_tokens_total", ["credential": "b", "user": "alice", "kind": "output"]) == Double(2 * account.outputTokens))
            #expect(after.value("codexpool_tokens_total", ["credential": "b", "user": "alice", "kind": "cached_input"]) == Double(2 * account.cachedTokens))

            // State gauges say what the pool holds.
            let now = Date()
            let b = try #require(bed.runtime.credentialStates.first { $0.tag == "b" })
            let weekly = try #require(after.value("codexpool_credential_utilization_ratio", ["credential": "b", "window": "weekly"]))
            #expect(abs(weekly - b.usage.usedPercent(.weekly, now: now) / 100) < 1e-9)
            let reset = try #require(after.value("codexpool_credential_reset_seconds", ["credential": "b", "window": "5h"]))
            let expectedReset = try #require(b.usage.resetAt(.fiveHour, now: now)).timeIntervalSince(now)
            #expect(abs(reset - expectedReset) < 5)
            #expect(after.value("codexpool_credential_usable", ["credential": "a"]) == 0)
            // Histograms are cumulative: the +Inf bucket holds every observation.
            #expect(after.value("codexpool_response_duration_seconds_bucket", ["transport": "http", "le": "+Inf"]) == 1)
        }
    }

    @Test func classifiesAClientThatLeavesMidStream() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", behavior: .stallMidStream)], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let connection = try await RawConnection(port: bed.server.port)
            try await connection.sendTurn()
            _ = await connection.readUntil("response.created")
            let during = try await scrape(bed)
            #expect(during.value("codexpool_http_requests_in_flight") == 1)
            connection.close()
            let after = try await bed.waitForScrape { $0.value("codexpool_http_requests_in_flight") == 0 }
            #expect(after.value("codexpool_responses_total", ["outcome": "client_disconnected", "credential": "a"]) == 1)
            #expect(after.value("codexpool_responses_total", ["outcome": "completed"]) == nil)
        }
    }

    /// `response.failed` ends a turn: counted as an upstream error over HTTP and WebSocket, and the
    /// WebSocket's next turn is booked as itself, not against the failed one.
    @Test func classifiesFailedAnswers() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", behavior: .failMidAnswer)], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let http = try await bed.request(json: GatewayTestBed.turnBody)
            #expect(http.status == 200)
            #expect(http.text.contains("response.failed"))

            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("session-id", "ws")])
            defer { client.close() }
            try await client.send(WebSocketProxyTests.prewarm)
            let warm = await client.messages(through: "response.completed")
            let prewarmID = try #require((warm.last?["response"] as? [String: Any])?["id"] as? String)
            try await client.send(WebSocketProxyTests.turn(after: prewarmID))
            #expect(await client.messages(through: "response.failed").last?["type"] as? String == "response.failed")
            bed.simulator.updateAccount("a") { $0.behavior = .normal }
            try await client.send(WebSocketProxyTests.turn(after: prewarmID))
            #expect(await client.messages(through: "response.completed").last?["type"] as? String == "response.completed")

            let after = try await scrape(bed)
            #expect(after.value("codexpool_responses_total", ["transport": "http", "outcome": "upstream_error"]) == 1)
            #expect(after.value("codexpool_responses_total", ["transport": "websocket", "outcome": "upstream_error"]) == 1)
            #expect(after.value("codexpool_responses_total", ["transport": "websocket", "outcome": "completed"]) == 1)
            #expect(after.value("codexpool_responses_total", ["transport": "http", "outcome": "completed"]) == nil)
        }
    }

    @Test func aMetricsTokenGuardsTheEndpointAndNoSecretLeaks() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.alice],
                                                 metrics: MetricsConfiguration(token: Secret("scrape-secret")))
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            #expect(try await bed.request(.GET, "/metrics").status == 401)
            #expect(try await bed.request(.GET, "/metrics", headers: [("authorization", "Bearer alice-token")]).status == 401)
            #expect(try await bed.request(.POST, "/metrics", headers: [("authorization", "Bearer scrape-secret")]).status == 405)
            #expect(try await bed.request(headers: [("authorization", "Bearer alice-token")], json: GatewayTestBed.turnBody).status == 200)
            let response = try await bed.request(.GET, "/metrics", headers: [("authorization", "Bearer scrape-secret")])
            #expect(response.status == 200)
            _ = try PrometheusText(response.text)
            for secret in ["scrape-secret", "alice-token", "access-a", "refresh-a"] { #expect(!response.text.contains(secret)) }
        }
    }

    @Test func disabledMetricsAreNotFound() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], metrics: MetricsConfiguration(enabled: false))
        try await bed.stopAfter { () async throws in
            #expect(try await bed.request(.GET, "/metrics").status == 404)
        }
    }

    @Test func readsWellFormedAndMalformedExpositions() throws {
        let text = try PrometheusText("""
        # HELP x_total A counter.
        # TYPE x_total counter
        x_total{a="q\\"uote",b="back\\\\slash"} 3
        # TYPE h histogram
        h_bucket{le="+Inf"} 2
        h_sum 0.5
        h_count 2
        """)
        #expect(text.value("x_total", ["a": "q\"uote", "b": "back\\slash"]) == 3)
        #expect(text.value("h_bucket", ["le": "+Inf"]) == 2)
        #expect(throws: PrometheusText.FormatError.self) { try PrometheusText("y 1") }
        #expect(throws: PrometheusText.FormatError.self) { try PrometheusText("# TYPE y gauge\ny{a=\"1} 1") }
        #expect(throws: PrometheusText.FormatError.self) { try PrometheusText("# TYPE y gauge\ny one") }
    }
}
