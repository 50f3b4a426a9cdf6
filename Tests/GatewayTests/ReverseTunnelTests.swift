import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import NIOPosix
import PoolCore
import Testing
import TestSupport
import UpstreamHTTP
import UpstreamSimulator
import Yamux

/// A balancer (receiver) and a connector, two gateways in this process, sharing one simulator:
/// the connector dials the balancer and serves its requests with the home account.
@Suite(.timeLimit(.minutes(1))) struct ReverseTunnelTests {
    static let tunnelToken = "tunnel-token-K"

    struct Pair: AsyncStoppable {
        let balancer: GatewayTestBed
        let connector: GatewayTestBed

        func stop() async {
            await connector.stop()
            await balancer.stop()
        }
    }

    /// The balancer has `vps` and the receiver credential `home`; user `laptop` is served by `home`
    /// only, `direct` by `vps` only, and `both` by a least-used pool over the two.
    static func startPair(connectorToken: String = tunnelToken, overTLS: Bool = false, homeBehavior: SimulatedAccount.Behavior = .normal,
                          tunnelSettings: YamuxConfiguration = YamuxConfiguration(), idleTunnelStreams: Int? = nil,
                          balancerStorage: StorageConfiguration = .disabled) async throws -> Pair {
        let certificates = TestCertificates.shared
        let home = SimulatedAccount(accountID: "home", planType: "pro", fiveHourPercent: 30, weeklyPercent: 40, behavior: homeBehavior)
        let balancer = try await startBalancer(overTLS: overTLS, home: home, tunnelSettings: tunnelSettings, idleTunnelStreams: idleTunnelStreams,
                                               storage: balancerStorage)
        let scheme = overTLS ? "https://localhost" : "http://127.0.0.1"
        // The balancer wrote auth files for both accounts; only its own is configured locally.
        let connector = try await GatewayTestBed.start(
            accounts: [home], balancer: nil,
            users: [.init(name: "balancer", token: tunnelToken, credential: "home")],
            externals: [ExternalCredentialConfiguration(
                tag: "to-balancer", token: Secret(connectorToken), mode: .connector(EndpointURL(parsing: "\(scheme):\(balancer.server.port)")!),
                dialHost: "127.0.0.1", tls: PeerTLSConfiguration(caPath: overTLS ? certificates.caFile : nil))],
            simulator: balancer.simulator, tunnelSettings: tunnelSettings)
        return Pair(balancer: balancer, connector: connector)
    }

    /// The balancer of the pair; `port` and `simulator` restart it where an earlier one was.
    static func startBalancer(overTLS: Bool = false, home: SimulatedAccount = SimulatedAccount(accountID: "home", planType: "pro"),
                              port: Int = 0, simulator: UpstreamSimulator? = nil,
                              tunnelSettings: YamuxConfiguration = YamuxConfiguration(), idleTunnelStreams: Int? = nil,
                              storage: StorageConfiguration = .disabled) async throws -> GatewayTestBed {
        let certificates = TestCertificates.shared
        let vps = SimulatedAccount(accountID: "vps", planType: "plus", fiveHourPercent: 10, weeklyPercent: 20)
        return try await GatewayTestBed.start(
            accounts: [vps, home], balancer: nil,
            users: [.init(name: "laptop", token: "laptop-token", credential: "home", allowExternalUsage: true),
                    .init(name: "direct", token: "direct-token", credential: "vps"),
                    .init(name: "both", token: "both-token", credential: "both", allowExternalUsage: true)],
            tls: overTLS ? InboundTLSConfiguration(certificatePath: certificates.serverCertificate, keyPath: certificates.serverKey) : nil,
            externals: [ExternalCredentialConfiguration(tag: "home", token: Secret(tunnelToken), mode: .receiver)],
            simulator: simulator, pools: [BalancerDefinition(tag: "both", members: ["vps", "home"], strategy: .leastUsed)], port: port,
            tunnelSettings: tunnelSettings, idleTunnelStreams: idleTunnelStreams, storage: storage)
    }

    /// Waits until the condition holds (checked on every status change and every 10 ms), at most 10 s.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not reached within 10 s")
    }

    /// Connected, and the connector's status says it can serve: right after the tunnel comes up
    /// the connector may report its pool as used up, until its own first usage poll answers.
    static func isServing(_ bed: GatewayTestBed, _ tag: String) -> Bool {
        guard isAvailable(bed, tag), let state = bed.runtime.credentialStates.first(where: { $0.tag == tag }) else { return false }
        return state.usage.hasData && state.usability(now: Date()).isUsable
    }

    static func isAvailable(_ bed: GatewayTestBed, _ tag: String) -> Bool {
        guard case .available = bed.runtime.credentialStates.first(where: { $0.tag == tag })?.availability else { return false }
        return true
    }

    @Test(arguments: [false, true])
    func requestsTravelThroughTheTunnelToTheConnectorsAccount(overTLS: Bool) async throws {
        let pair = try await Self.startPair(overTLS: overTLS)
        try await Self.eventually { pair.balancer.runtime.reverseTunnels.session(for: "home") != nil && Self.isServing(pair.balancer, "home") }

        let response = try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.text.contains("response.completed"))
        // Served upstream by the connector with the home account's token.
        let served = pair.balancer.simulator.modelRequests
        #expect(served.count == 1)
        #expect(served.last?.accountID == "home")
        #expect(served.last?.header("authorization") == "Bearer access-home")
        // Rate-limit headers are the balancer's aggregate for this user, not the account's own.
        #expect(response.header("x-codex-primary-used-percent") != nil)

        // Several requests at once, each on its own stream.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 8))
        await pair.stop()
    }

    /// A Responses WebSocket through the tunnel: the relay's client leg is on the balancer's
    /// client loop and its upstream leg on the tunnel session's loop.
    @Test(arguments: [false, true])
    func webSocketSessionsTravelThroughTheTunnel(overTLS: Bool) async throws {
        let pair = try await Self.startPair(overTLS: overTLS)
        try await Self.eventually { Self.peerWeight(pair.balancer, "home") != nil }
        // Several sessions so that some land on the other event loop than the tunnel's.
        for index in 0..<4 {
            let client = try await TestWebSocketClient.connect(
                port: pair.balancer.server.port,
                headers: [("authorization", "Bearer laptop-token"), ("session-id", "tunnel-ws-\(index)"),
                          ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")],
                tls: pair.balancer.clientTLS)
            guard case .upgraded(let head) = client.outcome else {
                Issue.record("not upgraded: \(String(describing: client.outcome))")
                client.close()
                break
            }
            #expect(head.headers.first(name: "x-codex-primary-used-percent") != nil)
            let events = try await client.warmUpAndTurn()
            let types = events.compactMap { $0["type"] as? String }
            #expect(types.first == "codex.rate_limits")
            #expect(types.contains("response.output_text.delta"))
            // The event carries the balancer's aggregate for the user: the connector's status.
            #expect(events.first?["plan_weight"] as? Double == 10)
            if index == 0 {
                let primary = (events.first?["rate_limits"] as? [String: Any])?["primary"] as? [String: Any]
                // 30 % of the connector's default 99 % cap.
                #expect(primary?["used_percent"] as? Double == 31)
            }
            client.close()
        }
        let served = pair.balancer.simulator.modelRequests
        #expect(served.count == 8)
        #expect(served.allSatisfy { $0.accountID == "home" })
        await pair.stop()
    }

    static func peerWeight(_ bed: GatewayTestBed, _ tag: String) -> Double? {
        bed.runtime.credentialStates.first { $0.tag == tag }?.usage.peerPlanWeight
    }

    static func fiveHourUse(_ bed: GatewayTestBed, _ tag: String) -> Double? {
        bed.runtime.credentialStates.first { $0.tag == tag }?.usage.usedPercent(.fiveHour, now: Date())
    }

    /// §5.5: the balancer learns the connector's pool from its status stream, through the
    /// tunnel, and aggregates it with its own account.
    @Test func theConnectorsStatusStreamFeedsTheBalancersAggregate() async throws {
        let pair = try await Self.startPair()
        try await Self.eventually { Self.peerWeight(pair.balancer, "home") == 10 }
        let laptop = try await pair.balancer.request(.GET, "/ocm/v1/status", headers: [("authorization", "Bearer laptop-token")])
        // The connector's view of home: 30 % / 40 % against its default 99 % caps.
        #expect(laptop.text == #"{"five_hour_utilization":31,"five_hour_reset":\#(Self.reset(laptop.text, "five_hour_reset")),"weekly_utilization":41,"weekly_reset":\#(Self.reset(laptop.text, "weekly_reset")),"plan_weight":10}"# + "\n")
        // vps: plus (weight 1) at 10 % / 20 % of 99 %; home: external (cap 100) with weight 10 at 31 % / 41 %.
        let both = try await pair.balancer.request(.GET, "/ocm/v1/status", headers: [("authorization", "Bearer both-token")])
        let status = try AggregateStatus(statusJSON: Data(both.text.utf8))
        #expect(abs(status.fiveHourUtilization - (100 - (89.0 * 1 + 69 * 10) / 11)) < 0.01)
        #expect(abs(status.weeklyUtilization - (100 - (79.0 * 1 + 59 * 10) / 11)) < 0.01)
        #expect(status.planWeight == 11)

        // The home account's use grows; the connector sees it on a turn of its own (not through
        // the tunnel), and the balancer hears of it from the stream alone.
        pair.balancer.simulator.updateAccount("home") { $0.rateLimits.fiveHour?.usedPercent = 55 }
        let turn = try await pair.connector.request(headers: [("authorization", "Bearer \(Self.tunnelToken)")], json: GatewayTestBed.turnBody)
        #expect(turn.status == 200)
        try await Self.eventually { Self.fiveHourUse(pair.balancer, "home") == 56 }
        await pair.stop()
    }

    /// §5.5 without a tunnel: an external credential in URL mode watches the peer's status over
    /// its URL and forwards requests there; a peer that refuses the token fails the lazy poll.
    @Test func aURLPeerIsWatchedOverItsURL() async throws {
        let remote = try await GatewayTestBed.start(
            accounts: [SimulatedAccount(accountID: "remote", planType: "pro", fiveHourPercent: 20, weeklyPercent: 50)], balancer: nil,
            users: [.init(name: "peer", token: "peer-token", credential: "remote")])
        // Until its first usage poll the remote reports its plan's weight with an unknown (full)
        // use; the local instance must first hear the real one.
        await waitForData(remote, tags: ["remote"])
        let url = EndpointURL(parsing: "http://127.0.0.1:\(remote.server.port)")!
        let local = try await GatewayTestBed.start(
            accounts: [], balancer: nil,
            users: [.init(name: "me", token: "me-token", credential: "far", allowExternalUsage: true),
                    .init(name: "refused", token: "refused-token", credential: "wrong", allowExternalUsage: true)],
            externals: [ExternalCredentialConfiguration(tag: "far", token: Secret("peer-token"), mode: .forward(url)),
                        ExternalCredentialConfiguration(tag: "wrong", token: Secret("not-a-user"), mode: .forward(url))],
            simulator: remote.simulator)
        // The weight and the use can arrive in different frames (a poll, then the stream): wait for both.
        try await Self.eventually { Self.peerWeight(local, "far") == 10 && Self.fiveHourUse(local, "far") == 21 }
        let response = try await local.request(headers: [("authorization", "Bearer me-token")], json: GatewayTestBed.turnBody)
        #expect(response.status == 200)
        #expect(remote.simulator.modelRequests.last?.accountID == "remote")

        try await Self.eventually { local.runtime.credentialStates.first { $0.tag == "wrong" }?.usage.lastPollError == "HTTP 401" }
        #expect(Self.peerWeight(local, "wrong") == nil)
        let refused = try await local.request(headers: [("authorization", "Bearer refused-token")], json: GatewayTestBed.turnBody)
        #expect(refused.status != 200)
        await local.stop()
        await remote.stop()
    }

    /// The tunnel dies under a streaming request: the request ends at once with an error (no
    /// hang), the credential is reported offline with its tunnel's history, new work goes to the
    /// balancer's own account, and the connector dials back in within its backoff.
    @Test func aTunnelDyingMidStreamFailsInFlightWorkAndTheConnectorComesBack() async throws {
        let pair = try await Self.startPair(homeBehavior: .stallMidStream)
        try await Self.eventually { Self.peerWeight(pair.balancer, "home") == 10 }

        let connection = try await RawConnection(port: pair.balancer.server.port)
        try await connection.sendTurn(authorization: "Bearer laptop-token")
        var received = ""
        for await chunk in connection.received {
            received += String(buffer: chunk)
            if received.contains("response.created") { break }
        }
        #expect(received.hasPrefix("HTTP/1.1 200"))
        // The session current once the answer is under way is the one carrying it; taken before
        // the request, a reconnect in between would leave the answer on a session this test
        // never cuts, stalled until the 300 s read timeout.
        let first = try #require(pair.balancer.runtime.reverseTunnels.session(for: "home"))
        // The path dies (as a keepalive timeout or a reset would end it). While the offline state is
        // checked, the balancer refuses the connector's redial: its first one comes 2 to 3 s later,
        // which a loaded machine can take to get through the checks below.
        first.channel.close(promise: nil)
        pair.balancer.runtime.reverseTunnels.replaceTokens([])
        // The stalled response ends now: the connection closes without the completed event.
        for await chunk in connection.received { received += String(buffer: chunk) }
        #expect(!received.contains("response.completed"))

        try await Self.eventually { !Self.isAvailable(pair.balancer, "home") }
        let detail = try await pair.balancer.request(.GET, "/ocm/v1/status?detail=true", headers: [("authorization", "Bearer both-token")])
        let status = try #require(try JSONSerialization.jsonObject(with: Data(detail.text.utf8)) as? [String: Any])
        let credentials = try #require(status["credentials"] as? [[String: Any]])
        let home = try #require(credentials.first { $0["tag"] as? String == "home" })
        #expect(home["kind"] as? String == "receiver")
        #expect(home["usable"] as? Bool == false)
        #expect((home["unusable_reason"] as? String)?.contains("connector offline") == true, "\(home)")
        let tunnel = try #require(home["tunnel"] as? [String: Any])
        #expect(tunnel["online"] as? Bool == false)
        #expect(tunnel["disconnects"] as? Int == 1)
        #expect(credentials.first { $0["tag"] as? String == "vps" }?["usable"] as? Bool == true)
        // The same in the metrics, and the cut stream counted as an upstream error.
        let metrics = try PrometheusText(String(decoding: pair.balancer.runtime.metricsExposition(), as: UTF8.self))
        #expect(metrics.value("codexpool_tunnel_up", ["credential": "home"]) == 0)
        #expect(metrics.value("codexpool_tunnel_disconnects_total", ["credential": "home"]) == 1)
        #expect(metrics.value("codexpool_responses_total", ["outcome": "upstream_error", "credential": "home"]) == 1)
        let fallback = try await pair.balancer.request(headers: [("authorization", "Bearer both-token"), ("session-id", "after-loss")], json: GatewayTestBed.turnBody)
        #expect(fallback.status == 200)
        #expect(pair.balancer.simulator.modelRequests.last?.accountID == "vps")

        // Let it back in: it returns at its next attempt (the first or second backoff step).
        pair.balancer.runtime.reverseTunnels.replaceTokens([("home", Secret(Self.tunnelToken))])
        // The connector counts the session from reading the 101, a moment after the balancer.
        try await Self.eventually { Self.isServing(pair.balancer, "home") && pair.connector.runtime.tunnelHealth["to-balancer"]?.online == true }
        #expect(pair.balancer.runtime.tunnelHealth["home"]?.online == true)
        #expect(pair.connector.runtime.tunnelHealth["to-balancer"]?.disconnects == 1)
        let reconnected = try PrometheusText(String(decoding: pair.connector.runtime.metricsExposition(), as: UTF8.self))
        #expect(reconnected.value("codexpool_tunnel_up", ["credential": "to-balancer"]) == 1)
        #expect(reconnected.value("codexpool_tunnel_disconnects_total", ["credential": "to-balancer"]) == 1)
        await pair.stop()
    }

    /// The value of a numeric field in a status line, for comparing the rest exactly.
    static func reset(_ json: String, _ field: String) -> String {
        guard let range = json.range(of: "\"\(field)\":") else { return "?" }
        return String(json[range.upperBound...].prefix { $0.isNumber })
    }

    @Test func losingTheConnectorMakesTheCredentialUnavailable() async throws {
        let pair = try await Self.startPair()
        try await Self.eventually { Self.isServing(pair.balancer, "home") }
        await pair.connector.stop()
        try await Self.eventually { !Self.isAvailable(pair.balancer, "home") }
        #expect(pair.balancer.runtime.reverseTunnels.session(for: "home") == nil)

        let response = try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody)
        #expect(response.status != 200)
        #expect(response.text.contains("connector offline"), "\(response.text)")
        // The balancer's own account is untouched.
        let direct = try await pair.balancer.request(headers: [("authorization", "Bearer direct-token")], json: GatewayTestBed.turnBody)
        #expect(direct.status == 200)
        await pair.balancer.stop()
    }

    /// A pair with one slow turn through the tunnel under way (upstream has it): a pause before its
    /// head, then a dozen events 50 ms apart, well inside a 2 s drain. A shutdown then lands while
    /// the balancer waits for the head or (on a loaded machine) while the answer streams; neither
    /// may cut it.
    static func startPairWithATurnInFlight() async throws -> (Pair, Task<UpstreamClient.CollectedResponse, any Error>) {
        let pair = try await startPair()
        try await eventually { isServing(pair.balancer, "home") }
        pair.balancer.simulator.updateAccount("home") {
            $0.answerDelayMilliseconds = 300
            $0.eventIntervalMilliseconds = 50
        }
        let inFlight = Task { try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody) }
        try await eventually { pair.balancer.simulator.modelRequests.count == 1 }
        return (pair, inFlight)
    }
}
