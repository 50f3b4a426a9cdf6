import Configuration
import Foundation
import Gateway
import Logging
import NIOHTTP1
import NIOPosix
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// `codexpool demo` and `codexpool status`, run as the operator runs them.
@Suite(.timeLimit(.minutes(2))) struct OperatorCommandTests {
    @Test func demoRunsSampleSessionsAcrossBothNodes() async throws {
        let result = try await ChildProcess.runCodexpool(["demo", "--headless", "--listen", "127.0.0.1:0", "--duration", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        let output = result.stdout
        #expect(output.contains("experimental_bearer_token = \"demo-user-token\""))
        #expect(output.contains("base_url = \"http://127.0.0.1:"))
        // Every sample session succeeded, and both nodes served some.
        let summary = try #require(output.split(separator: "\n").first { $0.contains("sessions succeeded") })
        let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(numbers.count == 4, "\(summary)")
        if numbers.count == 4 {
            #expect(numbers[0] == 8 && numbers[1] == 8, "\(summary)")
            #expect(numbers[2] >= 1, "no session on the balancer's accounts: \(summary)")
            #expect(numbers[3] >= 1, "no session through the tunnel: \(summary)")
        }
        #expect(!output.contains("FAILED"))
        // Both nodes' tables, the receiver online through the TLS tunnel.
        #expect(output.contains("connector online for"))
        for tag in ["vps-pro", "vps-plus", "home ", "home-pro", "home-plus"] { #expect(output.contains(tag), "\(tag) missing") }
        #expect(output.hasSuffix("stopping the demo\n"))
    }

    @Test func demoExplainsABusyAddress() async throws {
        // A port that is taken: the test server's own.
        let server = try await StatusTestServer.start(accounts: [SimulatedAccount(accountID: "alpha")])
        try await server.stopAfter { () async throws in
            let result = try await ChildProcess.runCodexpool(["demo", "--headless", "--listen", "127.0.0.1:\(server.server.port)", "--duration", "0"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("cannot listen on 127.0.0.1:\(server.server.port)"), "\(result.stderr)")
            #expect(result.stderr.contains("pick another address with --listen"))
        }
    }

    @Test func statusReportsWhatTheServerHolds() async throws {
        let now = Date()
        let server = try await StatusTestServer.start(accounts: [
            SimulatedAccount(accountID: "alpha", planType: "pro", fiveHourPercent: 25, weeklyPercent: 40, fiveHourResetIn: 3600, now: now),
            SimulatedAccount(accountID: "beta", planType: "plus", fiveHourPercent: 70, weeklyPercent: 10, now: now),
        ])
        try await server.stopAfter { () async throws in

            let json = try await ChildProcess.runCodexpool(["status", "--url", server.url, "--token", "ops-token", "--json"])
            #expect(json.status == 0, "\(json.stderr)")
            let decoded = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let credentials = try #require(decoded["credentials"] as? [[String: Any]])
            #expect(credentials.map { $0["tag"] as? String } == ["alpha", "beta"])
            for credential in credentials {
                let tag = try #require(credential["tag"] as? String)
                let state = try #require(server.runtime.credentialStates.first { $0.tag == tag })
                let fiveHour = try #require(credential["five_hour"] as? [String: Any])
                #expect(fiveHour["used_percent"] as? Double == state.usage.usedPercent(.fiveHour, now: Date()))
                #expect(credential["plan_type"] as? String == state.usage.planType)
                #expect(credential["usable"] as? Bool == true)
            }
            // Local caps are 99 %: 25 % used of 99 reads 26 % of the usable window (hand-computed aggregate below).
            let aggregateFiveHour = try #require(decoded["five_hour_utilization"] as? Double)
            #expect(abs(aggregateFiveHour - server.runtime.aggregate(for: try server.user).fiveHourUtilization) < 1e-9)
            #expect(decoded["plan_weight"] as? Double == 11)

            let table = try await ChildProcess.runCodexpool(["status", "--url", server.url], environment: ["CODEXPOOL_TOKEN": "ops-token"])
            #expect(table.status == 0, "\(table.stderr)")
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("codexpool at \(server.url) — pool: 5h") == true)
            let alpha = try #require(lines.first { $0.hasPrefix("alpha") })
            #expect(alpha.contains("pro ×10"))
            #expect(alpha.contains("[███░░░░░░░]  25.0%"))
            #expect(alpha.contains("in 59m") || alpha.contains("in 1h 0m"))
            #expect(alpha.hasSuffix("ready"))
        }
    }

    @Test func statusExplainsFailures() async throws {
        let server = try await StatusTestServer.start(accounts: [SimulatedAccount(accountID: "alpha")])
        try await server.stopAfter { () async throws in
            let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-token-\(UUID().uuidString)")
            try "wrong\n".write(to: tokenFile, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: tokenFile) }
            let refused = try await ChildProcess.runCodexpool(["status", "--url", server.url, "--token-file", tokenFile.path])
            #expect(refused.status == 1)
            #expect(refused.stderr == "codexpool status: \(server.url) answered 401: invalid api key (pass a user token in $CODEXPOOL_TOKEN or with --token-file)\n")
            // A token on the command line still works, with a word about `ps`.
            let visible = try await ChildProcess.runCodexpool(["status", "--url", server.url, "--token", "ops-token"])
            #expect(visible.status == 0)
            #expect(visible.stderr.contains("warning: --token is visible to other users in `ps`"))

            // A port nothing listens on: the server's own, once stopped.
            let url = server.url
            await server.stop()
            let unreachable = try await ChildProcess.runCodexpool(["status", "--url", url], environment: ["CODEXPOOL_TOKEN": "ops-token"])
            #expect(unreachable.status == 1)
            #expect(unreachable.stderr.hasPrefix("codexpool status: cannot reach \(url)"))

            let bad = try await ChildProcess.runCodexpool(["status", "--url", "ftp://x"])
            #expect(bad.status == 64)
            #expect(bad.stderr.contains("--url must be an http:// or https:// URL"))
        }
    }
}

/// One gateway over a simulator, in the test process, for `codexpool status` to ask.
final class StatusTestServer: AsyncStoppable {
    let simulator: UpstreamSimulator
    let runtime: GatewayRuntime
    let server: GatewayServer
    let folder: URL
    var url: String { "http://127.0.0.1:\(server.port)" }
    var user: AuthenticatedUser {
        get throws { try UserAuthenticator(users: runtime.configuration.users, defaultProvider: "pool").authenticate(HTTPHeaders([("authorization", "Bearer ops-token")])).get() }
    }

    private init(simulator: UpstreamSimulator, runtime: GatewayRuntime, server: GatewayServer, folder: URL) {
        self.simulator = simulator
        self.runtime = runtime
        self.server = server
        self.folder = folder
    }

    static func start(accounts: [SimulatedAccount]) async throws -> StatusTestServer {
        let simulator = try await UpstreamSimulator.start(accounts: accounts)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-status-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var credentials: [CredentialConfiguration] = []
        for account in accounts {
            let path = folder.appendingPathComponent("\(account.accountID).json").path
            try account.authJSON().write(toFile: path, atomically: true, encoding: .utf8)
            credentials.append(.local(LocalCredentialConfiguration(tag: account.accountID, credentialPath: path)))
        }
        credentials.append(.balancer(BalancerDefinition(tag: "pool", members: accounts.map(\.accountID), strategy: .leastUsed)))
        let configuration = CodexpoolConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 0),
            upstream: UpstreamEndpoints(baseURL: EndpointURL(parsing: simulator.baseURL)!, apiBaseURL: EndpointURL(parsing: "http://127.0.0.1:\(simulator.port)")!,
                                        usageURL: EndpointURL(parsing: simulator.usageURL)!, tokenURL: EndpointURL(parsing: simulator.tokenURL)!),
            credentials: credentials, users: [UserConfiguration(name: "ops", token: Secret("ops-token"), credential: "pool", isAdmin: true),
                                              UserConfiguration(name: "viewer", token: Secret("viewer-token"), credential: "pool")])
        var logger = Logger(label: "status-test")
        logger.logLevel = .critical
        let runtime = try GatewayRuntime(configuration: configuration, logger: logger)
        await runtime.start()
        let server = try await GatewayServer.start(runtime: runtime)
        // Until the first usage poll has answered for every account.
        let changes = runtime.statusSignal.subscribe()
        let ready = { runtime.credentialStates.allSatisfy { $0.usage.hasData } }
        if !ready() {
            for await _ in changes where ready() { break }
        }
        return StatusTestServer(simulator: simulator, runtime: runtime, server: server, folder: folder)
    }

    func stop() async {
        await server.shutdown(gracePeriod: .seconds(1))
        await simulator.shutdown()
        try? FileManager.default.removeItem(at: folder)
    }
}
