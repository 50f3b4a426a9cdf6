import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOPosix
import PoolCore
import Testing
import TestSupport
import UpstreamSimulator

/// A balancer (receiver) and a connector, two gateways in this process, sharing one simulator:
/// the connector dials the balancer and serves its requests with the home account.
@Suite struct ReverseTunnelTests {
    static let tunnelToken = "tunnel-token-K"

    struct Pair {
        let balancer: GatewayTestBed
        let connector: GatewayTestBed

        func stop() async {
            await connector.stop()
            await balancer.stop()
        }
    }

    /// The balancer has `vps` and the receiver credential `home`; user `laptop` is served by `home` only.
    static func startPair(connectorToken: String = tunnelToken, overTLS: Bool = false) async throws -> Pair {
        let certificates = TestCertificates.shared
        let vps = SimulatedAccount(accountID: "vps", planType: "plus", fiveHourPercent: 10, weeklyPercent: 20)
        let home = SimulatedAccount(accountID: "home", planType: "pro", fiveHourPercent: 30, weeklyPercent: 40)
        let balancer = try await GatewayTestBed.start(
            accounts: [vps, home], balancer: nil,
            users: [.init(name: "laptop", token: "laptop-token", credential: "home"), .init(name: "direct", token: "direct-token", credential: "vps")],
            tls: overTLS ? InboundTLSConfiguration(certificatePath: certificates.serverCertificate, keyPath: certificates.serverKey) : nil,
            externals: [ExternalCredentialConfiguration(tag: "home", token: Secret(tunnelToken), mode: .receiver)])
        let scheme = overTLS ? "https://localhost" : "http://127.0.0.1"
        // The balancer wrote auth files for both accounts; only its own is configured locally.
        let connector = try await GatewayTestBed.start(
            accounts: [home], balancer: nil,
            users: [.init(name: "balancer", token: tunnelToken, credential: "home")],
            externals: [ExternalCredentialConfiguration(
                tag: "to-balancer", token: Secret(connectorToken), mode: .connector(EndpointURL(parsing: "\(scheme):\(balancer.server.port)")!),
                dialHost: "127.0.0.1", tls: PeerTLSConfiguration(caPath: overTLS ? certificates.caFile : nil))],
            simulator: balancer.simulator)
        return Pair(balancer: balancer, connector: connector)
    }

    /// Waits until the condition holds (checked on every status change and every 10 ms), at most 10 s.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not reached within 10 s")
    }

    static func isAvailable(_ bed: GatewayTestBed, _ tag: String) -> Bool {
        guard case .available = bed.runtime.credentialStates.first(where: { $0.tag == tag })?.availability else { return false }
        return true
    }

    @Test(arguments: [false, true])
    func requestsTravelThroughTheTunnelToTheConnectorsAccount(overTLS: Bool) async throws {
        let pair = try await Self.startPair(overTLS: overTLS)
        try await Self.eventually { pair.balancer.runtime.reverseTunnels.session(for: "home") != nil && Self.isAvailable(pair.balancer, "home") }

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

    @Test func losingTheConnectorMakesTheCredentialUnavailable() async throws {
        let pair = try await Self.startPair()
        try await Self.eventually { Self.isAvailable(pair.balancer, "home") }
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
        try await Self.eventually { Self.isAvailable(pair.balancer, "home") }
        connection.close()
        try await Self.eventually { !Self.isAvailable(pair.balancer, "home") }
        await pair.stop()
    }

    @Test func backoffFollowsTheReference() {
        let seconds = (1...7).map { ReverseConnector.backoff(failures: $0, jitter: 0).components.seconds }
        #expect(seconds == [2, 4, 8, 16, 30, 30, 30])
        #expect(ReverseConnector.backoff(failures: 1, jitter: 0.999) < .seconds(3))
        #expect(ReverseConnector.backoff(failures: 5, jitter: 0.999) < .seconds(45))
    }
}
