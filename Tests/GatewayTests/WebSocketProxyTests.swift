import Foundation
@testable import Gateway
import NIOHTTP1
import NIOWebSocket
import PoolCore
import Testing
import TestSupport
import UpstreamHTTP
import UpstreamSimulator

@Suite(.timeLimit(.minutes(1))) struct WebSocketProxyTests {
    static let prewarm = #"{"type":"response.create","model":"gpt-5.5","input":[],"generate":false}"#

    static func turn(after previous: String) -> String {
        #"{"type":"response.create","model":"gpt-5.5","previous_response_id":"\#(previous)","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
    }

    @Test func relaysATurnWithAggregatedRateLimitsInPlace() async throws {
        let now = Date()
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", fiveHourPercent: 49, weeklyPercent: 20, now: now),
            SimulatedAccount(accountID: "b", planType: "pro", fiveHourPercent: 9, weeklyPercent: 20, now: now),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("session-id", "ws1"), ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")])
            defer { client.close() }
            guard case .upgraded(let head) = client.outcome else { Issue.record("not upgraded: \(String(describing: client.outcome))"); return }
            #expect(head.headers.first(name: "x-ocm-plan-weight") == "11")
            #expect(head.headers.first(name: "sec-websocket-extensions") == "permessage-deflate")

            let events = try await client.warmUpAndTurn()
            let types = events.compactMap { $0["type"] as? String }
            #expect(types.first == "codex.rate_limits")
            #expect(types.contains("response.output_text.delta"))
            let limits = try #require(events.first)
            let windows = try #require(limits["rate_limits"] as? [String: Any])
            let primary = try #require(windows["primary"] as? [String: Any])
            #expect(abs((primary["used_percent"] as? Double ?? -1) - ((100 - (50.0 + 900) / 11) * 100).rounded() / 100) < 1e-9)
            #expect(primary["window_minutes"] as? Int == 300)
            #expect((windows["secondary"] as? [String: Any])?["used_percent"] as? Double == 21)
            #expect(limits["plan_weight"] as? Double == 11)
            #expect(limits["plan_type"] as? String == "pro")

            // One account for the whole connection; upstream saw the beta header and no client extensions.
            let upgrade = try #require(bed.simulator.requests.first { $0.transport == .webSocket })
            #expect(upgrade.header("openai-beta") == "responses_websockets=2026-02-06")
            #expect(bed.simulator.modelRequests.map(\.accountID) == ["b", "b"])
            #expect(bed.simulator.modelRequests.map(\.isWarmUp) == [true, false])
            let statistics = try await waitForUsage(bed, tag: "b")
            #expect(statistics.combinations.values.reduce(0) { $0 + $1.total.requestCount } == 1)
        }
    }

    /// Upstream's frames as a busy backend's reach the relay — many to a read, split anywhere,
    /// a ping and a fragmented message among them. Most pass on as the bytes they came in: the
    /// client gets every event once and in order, the rate limits rewritten, the ping is answered
    /// upstream, and the turn is counted from its `response.completed`. With permessage-deflate
    /// agreed, the short ones pass uncompressed and the long ones (the whole text) compressed.
    @Test(arguments: [false, true]) func batchedFramesReachTheClientInOrder(offeringDeflate: Bool) async throws {
        // 120 words of ten characters: one delta each, every one different.
        let words = (0..<120).map { String(format: "w%08d ", $0) }
        let reply = words.joined()
        var account = SimulatedAccount(accountID: "a", planType: "pro", reply: reply, deltaCount: 120)
        account.batchesWebSocketFrames = true
        let bed = try await GatewayTestBed.start(accounts: [account])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let extensions = offeringDeflate ? [("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")] : []
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("session-id", "ws-batched")] + extensions)
            defer { client.close() }
            guard case .upgraded = client.outcome else { Issue.record("not upgraded: \(String(describing: client.outcome))"); return }
            #expect((client.deflate != nil) == offeringDeflate)
            let events = try await client.warmUpAndTurn()
            let types = events.compactMap { $0["type"] as? String }
            #expect(types.first == "codex.rate_limits")
            #expect(events.first?["plan_weight"] as? Double == 10)
            #expect(types.filter { $0 == "codex.rate_limits" }.count == 1)
            #expect(types.last == "response.completed")
            #expect(types.filter { $0 == "response.completed" }.count == 1)
            #expect(types.contains("response.created"))
            let deltas = events.filter { $0["type"] as? String == "response.output_text.delta" }.compactMap { $0["delta"] as? String }
            #expect(deltas == words)
            if offeringDeflate {
                // The text done, the item done and the completed response carry the whole reply.
                #expect(client.compressedMessages >= 3)
                #expect(client.textMessages - client.compressedMessages >= 120)
            } else {
                #expect(client.compressedMessages == 0)
            }
            try await bed.simulator.waitUntil { $0.webSocketPongs == 2 }
            let statistics = try await waitForUsage(bed, tag: "a")
            #expect(statistics.combinations.values.reduce(0) { $0 + $1.total.requestCount } == 1)
        }
    }

    @Test func failsOverWhenTheUpgradeIsRateLimited() async throws {
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "pro", behavior: .rateLimited),
            SimulatedAccount(accountID: "b", planType: "plus", weeklyPercent: 50),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("session-id", "ws2")])
            defer { client.close() }
            guard case .upgraded = client.outcome else { Issue.record("not upgraded"); return }
            try await client.send(Self.prewarm)
            _ = await client.messages(through: "response.completed")
            #expect(bed.simulator.modelRequests.last?.accountID == "b")
        }
    }

    @Test func passesUpstreamRefusalsThroughUnchanged() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", behavior: .failing(status: 403))], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [])
            defer { client.close() }
            guard case .refused(let head, let body) = client.outcome else { Issue.record("upgraded"); return }
            #expect(head.status.code == 403)
            #expect(body.contains("simulated failure"))
        }
    }

    @Test func inBandRateLimitErrorUsesStatusCodeAndMarksTheCredential() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", weeklyPercent: 40)], balancer: nil)
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [])
            defer { client.close() }
            bed.simulator.updateAccount("a") { $0.rateLimits.weekly.usedPercent = 100 }
            try await client.send(Self.prewarm)
            let events = await client.messages(through: "error")
            let error = try #require(events.last)
            #expect(error["status_code"] as? Int == 429)
            #expect(error["status"] == nil)
            #expect((error["headers"] as? [String: Any])?["x-codex-secondary-used-percent"] as? String == "100.00")
            let state = try #require(bed.runtime.credentialStates.first)
            #expect(!state.usability(now: Date()).isUsable)
        }
    }

    @Test func rebalancingClosesTheSessionCleanly() async throws {
        let bed = try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", weeklyPercent: 10),
            SimulatedAccount(accountID: "b", planType: "plus", weeklyPercent: 30),
        ])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("session-id", "ws3")])
            guard case .upgraded = client.outcome else { Issue.record("not upgraded"); return }
            // The credential becomes unusable (a 429 elsewhere): its sessions are interrupted.
            bed.runtime.recordRateLimited("a", rejection: RateLimitRejection(retryAfter: 600))
            var sawClose = false
            while let frame = await client.nextFrame() {
                if frame.opcode == .connectionClose { sawClose = true }
            }
            #expect(sawClose)
        }
    }
}
