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
/// The tunnel's session over time: draining on either side's shutdown, stream reuse, keepalive,
/// reconnection, and the handshake's exact bytes.
extension ReverseTunnelTests {
    /// A connector shutting down says GoAway: the balancer sends it no new requests from then on,
    /// the request in flight through it still finishes whole, and the tunnel closes after it.
    @Test func aConnectorShuttingDownFinishesTheStreamsInFlight() async throws {
        let (pair, inFlight) = try await Self.startPairWithATurnInFlight()
        // A grace period far beyond the answer's time: the drain, not the deadline, must end it.
        let stopping = Task { await pair.connector.stop(gracePeriod: .seconds(60)) }
        try await Self.eventually { !Self.isAvailable(pair.balancer, "home") }
        #expect(pair.balancer.runtime.reverseTunnels.session(for: "home") == nil)
        let refused = try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody)
        #expect(refused.status != 200)
        #expect(refused.text.contains("connector offline"), "\(refused.text)")

        let answer = try await inFlight.value
        #expect(answer.status == 200)
        #expect(answer.text.contains("response.completed"), "\(answer.text)")
        #expect(pair.balancer.simulator.modelRequests.count == 1)
        await stopping.value
        await pair.balancer.stop()
    }

    /// The balancer shutting down drains its tunnels as it drains client connections: a request in
    /// flight through the tunnel finishes whole, and the tunnel closes after it (GoAway tells the
    /// connector why) instead of at the end of the grace period.
    @Test func aBalancerShuttingDownFinishesTheTunnelStreamsInFlight() async throws {
        let (pair, inFlight) = try await Self.startPairWithATurnInFlight()
        let started = ContinuousClock.now
        await pair.balancer.server.shutdown(gracePeriod: .seconds(40))
        // The answer takes about a second; forty would mean the tunnel waited for the deadline.
        #expect(ContinuousClock.now - started < .seconds(20))
        let answer = try await inFlight.value
        #expect(answer.status == 200)
        #expect(answer.text.contains("response.completed"), "\(answer.text)")
        try await Self.eventually { pair.connector.runtime.tunnelHealth["to-balancer"]?.online == false }
        await pair.stop()
    }

    /// Sequential requests share one stream, as keep-alive requests share a connection.
    @Test func requestsReuseIdleStreams() async throws {
        let pair = try await Self.startPair()
        // Available, and its status stream (a stream of its own, open for good) delivering.
        try await Self.eventually {
            Self.isServing(pair.balancer, "home")
        }
        let streams = try Self.streamCounter(pair)
        let before = try await streams()
        for turn in 0..<3 {
            let response = try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token"), ("session-id", "reuse")],
                                                           json: GatewayTestBed.turnBody)
            #expect(response.status == 200, "turn \(turn): \(response.text)")
        }
        // One pooled stream served all three and waits, idle, for the next: a new one when the pool
        // was empty, else the one already there (counted in `before`, not to be counted twice).
        let after = try await streams()
        #expect(after.idle == max(before.idle, 1), "\(after), before \(before)")
        #expect(after.open - after.idle <= before.open - before.idle, "\(after), before \(before)")
        #expect(pair.balancer.simulator.modelRequests.filter { $0.accountID == "home" }.count == 3)
        await pair.stop()
    }

    /// With the default bound, the same burst again is served by the streams the first one left
    /// idle: none is opened anew (a bound below the burst closed some after every answer).
    @Test func aRepeatedBurstReusesItsStreams() async throws {
        let pair = try await Self.startPair()
        try await Self.eventually { Self.isServing(pair.balancer, "home") }
        let session = try #require(pair.balancer.runtime.reverseTunnels.session(for: "home"))
        let opened = { try await session.channel.eventLoop.submit { session.handler.value.locallyOpenedStreamCount }.get() }
        let streams = try Self.streamCounter(pair)
        // Slow answers keep the whole burst in flight at once.
        pair.balancer.simulator.updateAccount("home") { $0.eventIntervalMilliseconds = 20 }
        let burst = 20
        func runBurst(_ name: String) async throws {
            #expect(try await Self.burst(of: burst, named: name, through: pair) == Array(repeating: 200, count: burst), "\(name)")
            // Every stream of the burst back in the pool before the next one starts.
            var now = try await streams()
            for _ in 0..<1000 where now.idle < burst {
                try await Task.sleep(for: .milliseconds(10))
                now = try await streams()
            }
            #expect(now.idle >= burst, "\(name): \(now)")
        }
        try await runBurst("first")
        let afterFirst = try await opened()
        #expect(afterFirst >= burst)
        try await runBurst("second")
        #expect(try await opened() == afterFirst, "the second burst opened streams of its own")
        await pair.stop()
    }

    /// `count` turns at once through the balancer to `home`, each its own session: their statuses.
    static func burst(of count: Int, named name: String, through pair: Pair) async throws -> [Int] {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await pair.balancer.request(headers: [("authorization", "Bearer laptop-token"), ("session-id", "\(name)-\(index)")],
                                                    json: GatewayTestBed.turnBody).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Open streams of the balancer's session for `home`, and of them the ones idle in the tunnel's pool.
    static func streamCounter(_ pair: Pair) throws -> @Sendable () async throws -> (open: Int, idle: Int) {
        let session = try #require(pair.balancer.runtime.reverseTunnels.session(for: "home"))
        return { try await session.channel.eventLoop.submit { (session.handler.value.openStreamCount, session.streams.idleCount) }.get() }
    }

    /// A burst opens a stream per concurrent request; afterwards only so many stay idle.
    @Test func aBurstLeavesABoundedNumberOfIdleStreams() async throws {
        // A bound smaller than the default, so the burst stays small.
        let bound = 12
        let pair = try await Self.startPair(idleTunnelStreams: bound)
        #expect(pair.balancer.runtime.reverseTunnels.maximumIdleStreams == bound)
        try await Self.eventually { Self.isServing(pair.balancer, "home") }
        let streams = try Self.streamCounter(pair)
        // Streams not in the pool (a status stream, a poll under way) are not the pool's to bound.
        let before = try await streams()
        let outsideBefore = before.open - before.idle
        // Slow answers keep all of them in flight at once.
        pair.balancer.simulator.updateAccount("home") { $0.eventIntervalMilliseconds = 20 }
        let burst = bound + 8
        #expect(try await Self.burst(of: burst, named: "burst", through: pair) == Array(repeating: 200, count: burst))
        // The pool keeps exactly its bound; the burst's other streams close as their answers end
        // (their FIN takes a moment).
        func settled(_ now: (open: Int, idle: Int)) -> Bool {
            now.idle == bound && now.open - now.idle <= outsideBefore
        }
        var after = try await streams()
        for _ in 0..<1000 where !settled(after) {
            try await Task.sleep(for: .milliseconds(10))
            after = try await streams()
        }
        #expect(after.idle == bound, "idle streams: \(after), before \(before)")
        #expect(after.open - after.idle <= outsideBefore, "streams beyond the pool's bound stayed open: \(after), before \(before)")
        await pair.stop()
    }

    /// Keepalive round trips reach the operator on both sides: health, detailed status, metrics.
    @Test func keepaliveRoundTripsAreReported() async throws {
        var settings = YamuxConfiguration()
        settings.keepAliveInterval = .milliseconds(20)
        let pair = try await Self.startPair(tunnelSettings: settings)
        try await Self.eventually {
            pair.balancer.runtime.tunnelHealth["home"]?.lastRoundTrip != nil && pair.connector.runtime.tunnelHealth["to-balancer"]?.lastRoundTrip != nil
        }
        let detail = try await pair.balancer.request(.GET, "/ocm/v1/status?detail=true", headers: [("authorization", "Bearer both-token")])
        let status = try #require(try JSONSerialization.jsonObject(with: Data(detail.text.utf8)) as? [String: Any])
        let home = try #require((status["credentials"] as? [[String: Any]])?.first { $0["tag"] as? String == "home" })
        let tunnel = try #require(home["tunnel"] as? [String: Any])
        #expect(tunnel["online"] as? Bool == true)
        #expect((tunnel["round_trip_ms"] as? Double ?? -1) >= 0)
        for (bed, tag) in [(pair.balancer, "home"), (pair.connector, "to-balancer")] {
            let metrics = try PrometheusText(String(decoding: bed.runtime.metricsExposition(), as: UTF8.self))
            #expect((metrics.value("codexpool_tunnel_round_trip_seconds", ["credential": tag]) ?? -1) >= 0, "\(tag)")
            #expect(metrics.value("codexpool_tunnel_up", ["credential": tag]) == 1)
        }
        await pair.stop()
    }

    @Test func theConnectorComesBackToARestartedBalancer() async throws {
        let pair = try await Self.startPair()
        try await Self.eventually { Self.isServing(pair.balancer, "home") }
        let port = pair.balancer.server.port
        // The balancer goes away (its simulator stays: the connector uses it too) …
        await pair.balancer.server.shutdown(gracePeriod: .seconds(1))
        try await Self.eventually { pair.connector.runtime.tunnelHealth["to-balancer"]?.online == false }
        // … and a new one starts on the same port, knowing nothing of the old session.
        let restarted = try await Self.startBalancer(port: port, simulator: pair.balancer.simulator)
        #expect(restarted.server.port == port)
        // Back after the first backoff step (2 s plus at most 50 % jitter; the schedule itself is
        // checked by backoffFollowsTheReference, without a clock).
        // The balancer counts the session from its 101, the connector from reading it: wait for both.
        try await Self.eventually { Self.isServing(restarted, "home") && pair.connector.runtime.tunnelHealth["to-balancer"]?.online == true }
        #expect(pair.connector.runtime.tunnelHealth["to-balancer"]?.disconnects == 1)
        let response = try await restarted.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody)
        #expect(response.status == 200, "\(response.text)")
        #expect(restarted.simulator.modelRequests.last?.accountID == "home")
        await pair.connector.stop()
        await restarted.stop()
        await pair.balancer.stop()
    }

    @Test func aWrongTokenIsRefusedAndNoSessionStarts() async throws {
        let pair = try await Self.startPair(connectorToken: "not-the-token")
        // The refusal as the connector sees it, on a raw connection with the same request.
        let connection = try await RawConnection(port: pair.balancer.server.port)
        try await connection.send(Array("GET /ocm/v1/reverse HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\nAuthorization: Bearer not-the-token\r\n\r\n".utf8))
        let answer = await connection.readUntil("invalid reverse token")
        #expect(answer.hasPrefix("HTTP/1.1 401"))
        connection.close()
        #expect(pair.balancer.runtime.reverseTunnels.session(for: "home") == nil)
        #expect(!Self.isAvailable(pair.balancer, "home"))
        await pair.stop()
    }

    /// §6.2: the exact 101, and the checks in the reference's order.
    @Test func handshakeIsByteExactAndChecksInOrder() async throws {
        let pair = try await Self.startPair(connectorToken: "not-the-token")
        let cases: [(String, String)] = [
            ("Upgrade: websocket\r\nAuthorization: Bearer \(Self.tunnelToken)\r\n", "HTTP/1.1 400"),
            ("Upgrade: reverse-proxy\r\nX-Api-Key: k\r\nAuthorization: Bearer \(Self.tunnelToken)\r\n", "HTTP/1.1 400"),
            ("Upgrade: reverse-proxy\r\n", "HTTP/1.1 401"),
            ("Upgrade: reverse-proxy\r\nAuthorization: Basic abc\r\n", "HTTP/1.1 401"),
        ]
        for (headers, status) in cases {
            let connection = try await RawConnection(port: pair.balancer.server.port)
            try await connection.send(Array("GET /ocm/v1/reverse HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\(headers)\r\n".utf8))
            let answer = await connection.readUntil("}")
            #expect(answer.hasPrefix(status), "\(headers): \(answer)")
            connection.close()
        }
        let connection = try await RawConnection(port: pair.balancer.server.port)
        try await connection.send(Array("GET /ocm/v1/reverse HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\nAuthorization: Bearer \(Self.tunnelToken)\r\n\r\n".utf8))
        let answer = await connection.readUntil("\r\n\r\n")
        #expect(answer == reverseSwitchingProtocols)
        // Attached (no yamux peer answers here, so no status ever makes it serving).
        try await Self.eventually { Self.isAvailable(pair.balancer, "home") }
        connection.close()
        try await Self.eventually { !Self.isAvailable(pair.balancer, "home") }
        await pair.stop()
    }

    @Test func backoffFollowsTheReference() {
        let seconds = (1...7).map { ReconnectBackoff.delay(failures: $0, jitter: 0).components.seconds }
        #expect(seconds == [2, 4, 8, 16, 30, 30, 30])
        #expect(ReconnectBackoff.delay(failures: 1, jitter: 0.999) < .seconds(3))
        #expect(ReconnectBackoff.delay(failures: 5, jitter: 0.999) < .seconds(45))
    }
}
