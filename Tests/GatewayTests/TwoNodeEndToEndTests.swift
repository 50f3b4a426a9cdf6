import Foundation
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// Two `codexpool` processes, a balancer and a connector, started from YAML files shaped like
/// Configs/balancer.yaml and Configs/connector.yaml, the simulator as the Codex backend and
/// the real Codex CLI pointed at the balancer over WebSocket.
@Suite(.timeLimit(.minutes(2))) struct TwoNodeEndToEndTests {
    static let environment = ["HOME_TOKEN": "e2e-home-token", "LAPTOP_TOKEN": "e2e-laptop-token"]

    /// The balancer's own vps-a: plus, 5 h 50 %, week 20 %. The connector's home-b: pro,
    /// 5 h 10 %, week 30 %. The balancer sees home as the connector reports it (its default
    /// 99 % cap: 11 % and 31 %, weight 10), with an external cap of 100:
    /// 5 h = 100 − (49·1 + 89·10)/11 = 14.64 %, week = 100 − (79·1 + 69·10)/11 = 30.09 %.
    @Test(arguments: CodexCLI.Version.allCases)
    func aCLITurnIsServedByTheConnectorsAccount(version: CodexCLI.Version) async throws {
        let now = Date()
        let vps = SimulatedAccount(accountID: "vps-a", planType: "plus", fiveHourPercent: 50, weeklyPercent: 20, now: now)
        let home = SimulatedAccount(accountID: "home-b", planType: "pro", fiveHourPercent: 10, weeklyPercent: 30, now: now)
        let simulator = try await UpstreamSimulator.start(accounts: [vps, home], group: GatewayTestBed.group)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-two-node-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for account in [vps, home] {
            try account.authJSON().write(to: folder.appendingPathComponent("\(account.accountID).json"), atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        // One node: its credentials and users after the shared listen address and upstream.
        func serve(_ name: String, _ credentialsAndUsers: String) throws -> ChildProcess {
            let config = folder.appendingPathComponent("\(name).yaml")
            try """
            listen: 127.0.0.1:0
            upstream:
              base_url: \(simulator.baseURL)
              usage_url: \(simulator.usageURL)
              token_url: \(simulator.tokenURL)
            \(credentialsAndUsers)
            log:
              level: info
            """.write(to: config, atomically: true, encoding: .utf8)
            let node = ChildProcess(try ChildProcess.codexpoolExecutable, ["serve", "--config", config.path], environment: Self.environment)
            try node.start()
            return node
        }
        let balancer = try serve("balancer", """
            credentials:
              - tag: vps-a
                credential_path: \(folder.path)/vps-a.json
              - tag: home
                type: external
                reverse: true
                token: ${HOME_TOKEN}
              - tag: pool
                type: balancer
                strategy: least-used
                credentials: [vps-a, home]
            users:
              - name: laptop
                token: ${LAPTOP_TOKEN}
                credential: pool
                allow_external_usage: true
            """)
        defer { balancer.terminate() }
        await balancer.waitForStandardError(containing: "ready")
        let port = try #require(Self.listeningPort(in: balancer.standardError), "\(balancer.standardError)")

        let connector = try serve("connector", """
            credentials:
              - tag: home-b
                credential_path: \(folder.path)/home-b.json
              - tag: vps
                type: external
                url: http://127.0.0.1:\(port)
                reverse: true
                token: ${HOME_TOKEN}
            users:
              - name: vps
                token: ${HOME_TOKEN}
                credential: home-b
                external_credential: vps
            """)
        defer { connector.terminate() }
        await connector.waitForStandardError(containing: "reverse connection established for vps")
        await balancer.waitForStandardError(containing: "reverse connection established for home")

        // The balancer has both nodes' status once the connector's status stream arrived.
        var status = ""
        for _ in 0..<500 where !status.contains(#""plan_weight":11"#) {
            status = try await Self.status(port: port, token: Self.environment["LAPTOP_TOKEN"]!)
            if !status.contains(#""plan_weight":11"#) { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(status.contains(#""plan_weight":11"#), "\(status)")

        let codexHome = try CodexCLI.makeHome(baseURL: "http://127.0.0.1:\(port)/v1", token: Self.environment["LAPTOP_TOKEN"]!, webSocket: true)
        defer { try? FileManager.default.removeItem(at: codexHome) }
        simulator.checkCodexRequests()
        let run = try await CodexCLI.exec("say hi", home: codexHome, version: version)
        #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
        #expect(run.stdout.contains("Hello from home-b."), "\(run.stdout)")
        #expect(!run.stdout.contains("Falling back from WebSockets"))
        // Served upstream by the connector, with the home account, over WebSocket.
        #expect(!simulator.modelRequests.isEmpty)
        #expect(simulator.modelRequests.allSatisfy { $0.accountID == "home-b" && $0.transport == .webSocket })
        try CodexCLIEndToEndTests.expectRequestShape(of: version, in: simulator.modelRequests)

        let limits = try #require(try run.recordedRateLimits, "no rate limits in the rollout")
        #expect((limits["primary"] as? [String: Any])?["used_percent"] as? Double == 14.64)
        #expect((limits["secondary"] as? [String: Any])?["used_percent"] as? Double == 30.09)
        await simulator.shutdown()
    }

    static func listeningPort(in log: String) -> Int? {
        guard let range = log.range(of: "listening on http://127.0.0.1:") else { return nil }
        return Int(log[range.upperBound...].prefix { $0.isNumber })
    }

    /// `GET /ocm/v1/status` on a fresh connection; the JSON line.
    static func status(port: Int, token: String) async throws -> String {
        let connection = try await RawConnection(port: port)
        defer { connection.close() }
        try await connection.send(Array("GET /ocm/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n".utf8))
        let answer = await connection.readUntil("}\n")
        return answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? answer
    }
}
