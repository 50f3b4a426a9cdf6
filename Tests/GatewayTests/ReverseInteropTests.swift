import Configuration
import Foundation
@testable import Gateway
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The reverse handshake and tunnel against the reference's wire format, played by a Go program
/// on hashicorp/yamux (Tests/GatewayTests/GoReversePeer) in both roles.
@Suite(.timeLimit(.minutes(1))) struct ReverseInteropTests {
    static let token = "interop-token-K"

    static let peer = GoProgram.build(
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GoReversePeer/reversepeer.go"), named: "reversepeer")

    /// Our receiver, a Go connector: the balancer routes a user's request through the tunnel
    /// to the Go side's HTTP server and learns its status from the stream.
    @Test func ourReceiverServesUsersFromAGoConnector() async throws {
        let balancer = try await GatewayTestBed.start(
            accounts: [SimulatedAccount(accountID: "vps")], balancer: nil,
            users: [.init(name: "laptop", token: "laptop-token", credential: "home", allowExternalUsage: true)],
            externals: [ExternalCredentialConfiguration(tag: "home", token: Secret(Self.token), mode: .receiver)])
        let go = ChildProcess(try Self.peer.get(), ["-mode", "connector", "-addr", "127.0.0.1:\(balancer.server.port)", "-token", Self.token],
                              mergeOutput: true)
        try go.start()
        defer { go.terminate() }
        await go.waitForStandardError(containing: "CONNECTED")
        // The Go side's status: 12.5 % / 40 %, weight 7.
        try await ReverseTunnelTests.eventually { ReverseTunnelTests.peerWeight(balancer, "home") == 7 }
        #expect(ReverseTunnelTests.fiveHourUse(balancer, "home") == 12.5)

        let response = try await balancer.request(headers: [("authorization", "Bearer laptop-token"), ("session-id", "interop")], json: GatewayTestBed.turnBody)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.text.contains("Hello from the go connector."))
        #expect(response.text.contains("response.completed"))
        #expect(response.header("x-codex-primary-used-percent") == "12.50")
        #expect(response.header("x-ocm-plan-weight") == "7")
        await go.waitForStandardError(containing: "REQUEST POST /v1/responses")
        let log = go.standardError
        #expect(log.contains("REQUEST GET /ocm/v1/status?watch=true host=reverse-proxy auth=Bearer \(Self.token)"), "\(log)")
        #expect(log.contains("REQUEST POST /v1/responses host=reverse-proxy auth=Bearer \(Self.token)"), "\(log)")
        await balancer.stop()
    }

    /// Our connector, a Go receiver: the upgrade request is byte-exact, the 101 arrives in the
    /// same segment as the first yamux frame, and the Go side's requests are served by our
    /// full handler with our account.
    @Test func ourConnectorServesAGoReceiver() async throws {
        let go = ChildProcess(try Self.peer.get(), ["-mode", "receiver", "-token", Self.token], mergeOutput: true)
        try go.start()
        defer { go.terminate() }
        await go.waitForStandardError(containing: "LISTENING ")
        let port = try #require(go.standardError.split(separator: "\n").first { $0.hasPrefix("LISTENING ") }.flatMap { Int($0.dropFirst(10)) })
        let connector = try await GatewayTestBed.start(
            accounts: [SimulatedAccount(accountID: "home", planType: "pro", fiveHourPercent: 30, weeklyPercent: 40)], balancer: nil,
            users: [.init(name: "balancer", token: Self.token, credential: "home")],
            externals: [ExternalCredentialConfiguration(
                tag: "to-go", token: Secret(Self.token), mode: .connector(EndpointURL(parsing: "http://127.0.0.1:\(port)")!))])
        // The Go side asks once the connector knows its account's use.
        await go.waitForStandardError(containing: "HANDSHAKE ")
        await waitForData(connector, tags: ["home"])
        go.writeInput("go\n")
        await go.waitForStandardError(containing: "RESULT responses=")
        let log = go.standardError
        let request = "GET /ocm/v1/reverse HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\nAuthorization: Bearer \(Self.token)\r\n\r\n"
        let quoted = "\"" + request.replacingOccurrences(of: "\r\n", with: "\\r\\n") + "\""
        #expect(log.contains("HANDSHAKE \(quoted)"), "\(log)")
        let statusLine = try #require(log.split(separator: "\n").first { $0.hasPrefix("RESULT status=") })
        #expect(statusLine.hasPrefix("RESULT status=200 "), "\(log)")
        #expect(statusLine.contains(#"\"plan_weight\":10"#), "\(statusLine)")
        let responsesLine = try #require(log.split(separator: "\n").first { $0.hasPrefix("RESULT responses=") })
        #expect(responsesLine.hasPrefix("RESULT responses=200 "), "\(log)")
        #expect(responsesLine.contains("Hello from home."))
        #expect(responsesLine.contains("response.completed"))
        #expect(connector.simulator.modelRequests.last?.accountID == "home")
        await connector.stop()
    }
}
