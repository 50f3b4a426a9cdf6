import Foundation
@testable import Gateway
import PoolCore
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// Responses-Lite requests (codex-wire-2026.md §1) reach upstream untouched: the marker header,
/// its WebSocket twin in `client_metadata`, and a body whose tools travel as an
/// `additional_tools` input item with no `tools` field — never "repaired".
@Suite(.timeLimit(.minutes(1))) struct ResponsesLiteTests {
    static let body = #"{"model":"gpt-5.6-mini","stream":true,"store":false,"reasoning":{"context":"all_turns"},"input":[{"type":"additional_tools","role":"developer","tools":[{"type":"function","name":"shell","parameters":{"type":"object"}}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
    static let message = #"{"type":"response.create","model":"gpt-5.6-mini","store":false,"client_metadata":{"ws_request_header_x_openai_internal_codex_responses_lite":"true"},"input":[{"type":"additional_tools","role":"developer","tools":[{"type":"function","name":"shell","parameters":{"type":"object"}}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#

    @Test func overHTTPTheHeaderAndBodyArriveAsSent() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        await waitForData(bed, tags: ["a"])
        let response = try await bed.request(headers: [("x-openai-internal-codex-responses-lite", "true")], json: Self.body)
        #expect(response.status == 200)
        let upstream = try #require(bed.simulator.modelRequests.last)
        #expect(upstream.header("x-openai-internal-codex-responses-lite") == "true")
        #expect(upstream.body == Data(Self.body.utf8), "the body is forwarded byte for byte")
        await bed.stop()
    }

    @Test func overWebSocketTheMessageArrivesAsSent() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        await waitForData(bed, tags: ["a"])
        let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [])
        guard case .upgraded = client.outcome else { Issue.record("not upgraded"); return }
        try await client.send(Self.message)
        _ = await client.messages(through: "response.completed")
        let upstream = try #require(bed.simulator.modelRequests.last { $0.transport == .webSocket })
        #expect(upstream.body == Data(Self.message.utf8), "the message is forwarded byte for byte")
        client.close()
        await bed.stop()
    }

    @Test func throughTheTunnelTheHeaderAndBodyArriveAsSent() async throws {
        let pair = try await ReverseTunnelTests.startPair()
        try await ReverseTunnelTests.eventually { pair.balancer.runtime.reverseTunnels.session(for: "home") != nil && ReverseTunnelTests.isServing(pair.balancer, "home") }
        let response = try await pair.balancer.request(
            headers: [("authorization", "Bearer laptop-token"), ("x-openai-internal-codex-responses-lite", "true")], json: Self.body)
        #expect(response.status == 200, "\(response.text)")
        let upstream = try #require(pair.balancer.simulator.modelRequests.last)
        #expect(upstream.accountID == "home")
        #expect(upstream.header("x-openai-internal-codex-responses-lite") == "true")
        #expect(upstream.body == Data(Self.body.utf8))
        await pair.stop()
    }
}
