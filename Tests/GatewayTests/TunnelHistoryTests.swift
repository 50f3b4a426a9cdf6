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

/// A request the balancer sends through the connector is in the balancer's history with the
/// receiving credential and the connector's own credential, as the connector named it.
@Suite(.timeLimit(.minutes(1))) struct TunnelHistoryTests {
    @Test func aTunnelRequestNamesTheConnectorsCredential() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-tunnel-history-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let pair = try await ReverseTunnelTests.startPair(
            balancerStorage: StorageConfiguration(enabled: true, path: folder.appendingPathComponent("h.sqlite3").path))
        try await ReverseTunnelTests.eventually { pair.balancer.runtime.reverseTunnels.session(for: "home") != nil && ReverseTunnelTests.isServing(pair.balancer, "home") }
        let viaTunnel = try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody)
        #expect(viaTunnel.status == 200)
        #expect(viaTunnel.header("x-codexpool-credential") == "home", "the client learns the balancer's credential, not the connector's header")
        let direct = try await pair.balancer.request(headers: [("authorization", "Bearer direct-token")], json: GatewayTestBed.turnBody)
        #expect(direct.status == 200)
        let history = try #require(pair.balancer.runtime.history)
        history.recorder.flush()
        let rows = try history.recorder.store.requests(.init())
        let tunnelRow = try #require(rows.first { $0.user == "laptop" })
        #expect(tunnelRow.credential == "home")
        #expect(tunnelRow.connectorCredential == "home", "the connector's account, as it said")
        #expect(tunnelRow.outcome == "completed" && tunnelRow.inputTokens > 0)
        let directRow = try #require(rows.first { $0.user == "direct" })
        #expect(directRow.credential == "vps" && directRow.connectorCredential == nil)
        await pair.stop()
    }
}
