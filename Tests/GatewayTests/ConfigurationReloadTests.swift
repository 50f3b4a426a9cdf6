import Configuration
import Foundation
@testable import Gateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import Synchronization
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// A balancer started from a YAML file, which the test rewrites and reloads (`POST /api/v1/reload`).
final class ReloadTestBed: AsyncStoppable {
    let simulator: UpstreamSimulator
    let runtime: GatewayRuntime
    let server: GatewayServer
    let folder: URL
    let client = UpstreamClient()
    var configPath: String { folder.appendingPathComponent("codexpool.yaml").path }
    var certificatePath: String { folder.appendingPathComponent("tls.pem").path }
    var keyPath: String { folder.appendingPathComponent("tls.key").path }

    /// - Parameter body: the file's credentials and users (and anything else), after listen, tls and upstream.
    static func start(accounts: [SimulatedAccount], tls: Bool, body: (_ folder: URL) -> String) async throws -> ReloadTestBed {
        let simulator = try await UpstreamSimulator.start(accounts: accounts, group: GatewayTestBed.group)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for account in accounts {
            try account.authJSON().write(to: folder.appendingPathComponent("\(account.accountID).json"), atomically: true, encoding: .utf8)
        }
        if tls {
            try FileManager.default.copyItem(atPath: TestCertificates.shared.serverCertificate, toPath: folder.appendingPathComponent("tls.pem").path)
            try FileManager.default.copyItem(atPath: TestCertificates.shared.serverKey, toPath: folder.appendingPathComponent("tls.key").path)
        }
        let header = Self.header(simulator: simulator, folder: folder, tls: tls)
        try (header + body(folder)).write(toFile: folder.appendingPathComponent("codexpool.yaml").path, atomically: true, encoding: .utf8)
        let configuration = try ConfigurationLoader().load(contentsOf: folder.appendingPathComponent("codexpool.yaml").path)
        var logger = Logger(label: "reload-test")
        logger.logLevel = ProcessInfo.processInfo.environment["GATEWAY_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let runtime = try GatewayRuntime(configuration: configuration, logger: logger, eventLoopGroup: GatewayTestBed.group)
        await runtime.start()
        let server = try await GatewayServer.start(runtime: runtime)
        server.enableReload(from: folder.appendingPathComponent("codexpool.yaml").path)
        return ReloadTestBed(simulator: simulator, runtime: runtime, server: server, folder: folder)
    }

    private init(simulator: UpstreamSimulator, runtime: GatewayRuntime, server: GatewayServer, folder: URL) {
        self.simulator = simulator
        self.runtime = runtime
        self.server = server
        self.folder = folder
    }

    static func header(simulator: UpstreamSimulator, folder: URL, tls: Bool, listen: String = "127.0.0.1:0") -> String {
        """
        listen: \(listen)
        \(tls ? "tls: {certificate: \(folder.path)/tls.pem, key: \(folder.path)/tls.key}" : "")
        storage: {enabled: false}
        upstream:
          base_url: \(simulator.baseURL)
          usage_url: \(simulator.usageURL)
          token_url: \(simulator.tokenURL)

        """
    }

    /// Rewrites the file: the same header, another body.
    func rewrite(_ body: String, listen: String = "127.0.0.1:0") throws {
        let tls = FileManager.default.fileExists(atPath: certificatePath)
        try (Self.header(simulator: simulator, folder: folder, tls: tls, listen: listen) + body).write(toFile: configPath, atomically: true, encoding: .utf8)
    }


    func stop() async {
        await server.shutdown(gracePeriod: .seconds(2))
        await simulator.shutdown()
        client.shutdown()
        try? FileManager.default.removeItem(at: folder)
    }

    func target(trusting ca: String?) throws -> UpstreamTarget {
        let tls = try ca.map { try OpenSSLContext.client(TLSClientConfiguration(caFilePath: $0)) }
        return UpstreamTarget(host: "127.0.0.1", port: server.port, tls: tls, serverName: "localhost", hostHeader: "127.0.0.1:\(server.port)")
    }

    func request(_ method: HTTPMethod = .POST, _ path: String = "/v1/responses", token: String, sessionID: String? = nil, trusting ca: String? = nil,
                 json: String? = GatewayTestBed.turnBody) async throws -> UpstreamClient.CollectedResponse {
        var headers = HTTPHeaders([("authorization", "Bearer \(token)")])
        if let sessionID { headers.add(name: "session-id", value: sessionID) }
        if json != nil { headers.add(name: "content-type", value: "application/json") }
        return try await client.collect(try target(trusting: ca), method: method, path: path, headers: headers, body: json.map { Array($0.utf8) },
                                        on: GatewayTestBed.group.next()).get()
    }
}

@Suite(.timeLimit(.minutes(3))) struct ConfigurationReloadTests {
    static let users = """
        users:
          - {name: alice, token: alice-1, credential: pool, admin: true}
          - {name: bob, token: bob-1, credential: pool}

        """

    /// Local credentials for these accounts and a least-used balancer `pool` over them.
    static func credentials(_ folder: URL, _ tags: [String]) -> String {
        "credentials:\n" + tags.map { "  - {tag: \($0), credential_path: \(folder.path)/\($0).json}\n" }.joined()
            + "  - {tag: pool, type: balancer, strategy: least-used, credentials: [\(tags.joined(separator: ", "))]}\n"
    }

    @Test func reloadAddsRemovesAndChangesWithoutCuttingWhatIsOpen() async throws {
        let now = Date()
        let bed = try await ReloadTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", weeklyPercent: 5, now: now), SimulatedAccount(accountID: "b", weeklyPercent: 60, now: now),
            SimulatedAccount(accountID: "c", weeklyPercent: 30, now: now),
        ], tls: true) { Self.credentials($0, ["a", "b"]) + Self.users }
        try await bed.stopAfter {
            let ca = TestCertificates.shared.caFile
            let otherCA = TestCertificates.shared.directory + "/other-ca.pem"
            #expect(bed.runtime.credentialStates.map(\.tag) == ["a", "b"])
            try await waitForRateLimits(bed.runtime, tags: ["a", "b"])

            // Open before the reload: a WebSocket session on a, and a streamed HTTP turn on a, held mid-answer.
            let webSocket = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer alice-1"), ("session-id", "ws-1")],
                                                                  tls: try OpenSSLContext.client(TLSClientConfiguration(caFilePath: ca)))
            defer { webSocket.close() }
            let first = try await webSocket.warmUpAndTurn()
            #expect(first.last?["type"] as? String == "response.completed")
            #expect(bed.simulator.modelRequests.last?.accountID == "a")
            bed.simulator.holdAnswers()
            let held = try await RawConnection(port: bed.server.port, tls: try OpenSSLContext.client(TLSClientConfiguration(caFilePath: ca)))
            defer { held.close() }
            try await held.sendTurn(authorization: "Bearer bob-1")
            let start = await held.readUntil("response.created")
            #expect(start.hasPrefix("HTTP/1.1 200"))
            try await bed.simulator.waitUntil { $0.heldAnswers == 1 }

            // The new file: a leaves, c joins, bob has a new token, and the certificate is renewed (same paths).
            try bed.rewrite(Self.credentials(bed.folder, ["b", "c"]) + Self.users.replacingOccurrences(of: "bob-1", with: "bob-2"))
            try FileManager.default.removeItem(atPath: bed.certificatePath)
            try FileManager.default.removeItem(atPath: bed.keyPath)
            try FileManager.default.copyItem(atPath: TestCertificates.shared.untrustedCertificate, toPath: bed.certificatePath)
            try FileManager.default.copyItem(atPath: TestCertificates.shared.untrustedKey, toPath: bed.keyPath)
            let reload = try await bed.reload(token: "alice-1", trusting: ca)
            #expect(reload.status == 200, "\(reload.text)")
            let summary = try #require(JSONValue.parse(reload.body)?["summary"]?.stringValue)
            #expect(summary == "credentials +c −a ~pool; users ~bob; tls re-read")

            // Nothing open was cut: the held turn finishes, the WebSocket session takes another turn on a.
            bed.simulator.releaseAnswers()
            let rest = await held.readUntil("event: response.completed")
            #expect(rest.contains("event: response.completed"), "the held turn was cut: \(rest.suffix(300))")
            let prewarmID = try #require((first.first { $0["type"] as? String == "response.completed" }?["response"] as? [String: Any])?["id"] as? String)
            try await webSocket.send(WebSocketProxyTests.turn(after: prewarmID))
            let second = await webSocket.messages(through: "response.completed")
            #expect(second.last?["type"] as? String == "response.completed")
            #expect(bed.simulator.modelRequests.last?.accountID == "a")

            // The new state is served: the renewed certificate, c in the pool and a not, bob's new token only.
            await #expect(throws: (any Error).self) { _ = try await bed.request(token: "alice-1", trusting: ca) }
            try await waitForRateLimits(bed.runtime, tags: ["c"])
            #expect(bed.runtime.credentialStates.map(\.tag) == ["b", "c"])
            let fresh = try await bed.request(token: "alice-1", sessionID: "new-1", trusting: otherCA)
            #expect(fresh.status == 200)
            #expect(bed.simulator.modelRequests.last?.accountID == "c")
            #expect(try await bed.request(token: "bob-1", trusting: otherCA).status == 401)
            #expect(try await bed.request(token: "bob-2", trusting: otherCA).status == 200)

            // A file with a mistake changes nothing; the answer names file, line and column.
            try bed.rewrite(Self.credentials(bed.folder, ["b"]) + "users:\n  - {name: alice, token: alice-1, credential: pool, admin: true, colour: blue}\n")
            let refused = try await bed.reload(token: "alice-1", trusting: otherCA)
            #expect(refused.status == 422)
            let message = JSONValue.parse(refused.body)?["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("\(bed.configPath):"), "\(message)")
            #expect(message.contains("colour"), "\(message)")
            #expect(bed.runtime.credentialStates.map(\.tag) == ["b", "c"])
            #expect(try await bed.request(token: "bob-2", trusting: otherCA).status == 200)
        }
    }

    @Test func theListenerMovesAndOldConnectionsStay() async throws {
        let bed = try await ReloadTestBed.start(accounts: [SimulatedAccount(accountID: "a")], tls: false) { Self.credentials($0, ["a"]) + Self.users }
        try await bed.stopAfter {
            let oldPort = bed.server.port
            try await waitForRateLimits(bed.runtime, tags: ["a"])
            bed.simulator.holdAnswers()
            let held = try await RawConnection(port: oldPort)
            defer { held.close() }
            try await held.sendTurn(authorization: "Bearer bob-1")
            _ = await held.readUntil("response.created")
            try await bed.simulator.waitUntil { $0.heldAnswers == 1 }

            try bed.rewrite(Self.credentials(bed.folder, ["a"]) + Self.users, listen: "127.0.0.2:0")
            let moved = try await bed.reload(token: "alice-1", trusting: nil, port: oldPort)
            #expect(moved.status == 200, "\(moved.text)")
            #expect(JSONValue.parse(moved.body)?["summary"]?.stringValue == "listen 127.0.0.1:0 → 127.0.0.2:0")
            #expect(bed.server.port != 0)
            await #expect(throws: (any Error).self) { _ = try await RawConnection(port: oldPort) }
            bed.simulator.releaseAnswers()
            let rest = await held.readUntil("event: response.completed")
            #expect(rest.contains("event: response.completed"))
            let target = UpstreamTarget(host: "127.0.0.2", port: bed.server.port, tls: nil, hostHeader: "127.0.0.2:\(bed.server.port)")
            let answer = try await bed.client.collect(target, method: .GET, path: "/ocm/v1/status", headers: HTTPHeaders([("authorization", "Bearer bob-1")]),
                                                      on: GatewayTestBed.group.next()).get()
            #expect(answer.status == 200)
        }
    }

    @Test func onlyAdminsMayReloadAndAnInstanceWithoutAFileSaysSo() async throws {
        let bed = try await ReloadTestBed.start(accounts: [SimulatedAccount(accountID: "a")], tls: false) { Self.credentials($0, ["a"]) + Self.users }
        try await bed.stopAfter {
            let refused = try await bed.reload(token: "bob-1", trusting: nil)
            #expect(refused.status == 403)
            #expect(try await bed.reload(token: "alice-1", trusting: nil, method: .GET).status == 405)
            bed.runtime.reloader.withLock { $0 = nil }
            let unavailable = try await bed.reload(token: "alice-1", trusting: nil)
            #expect(unavailable.status == 409)
            #expect(unavailable.text.contains("without a configuration file"))
        }
    }
}

/// A connector credential added by a reload dials in at once; removed by a reload, its tunnel goes.
@Suite(.timeLimit(.minutes(2))) struct ConnectorReloadTests {
    @Test func aReloadStartsAndStopsAConnector() async throws {
        let balancer = try await ReverseTunnelTests.startBalancer()
        try await balancer.stopAfter {
            let token = ReverseTunnelTests.tunnelToken
            let local = { (folder: URL) in
                "credentials:\n  - {tag: home, credential_path: \(folder.path)/home.json}\n"
            }
            let users = "users:\n  - {name: balancer, token: \(token), credential: home}\n"
            let connector = try await ReloadTestBed.start(accounts: [SimulatedAccount(accountID: "home")], tls: false) { local($0) + users }
            try await connector.stopAfter {
                #expect(!ReverseTunnelTests.isAvailable(balancer, "home"))
                let dialing = "  - {tag: to-balancer, type: external, url: http://127.0.0.1:\(balancer.server.port), token: \(token), reverse: true}\n"
                try connector.rewrite(local(connector.folder) + dialing + users)
                #expect(await connector.server.reload(fromFile: connector.configPath) == .applied("credentials +to-balancer"))
                try await ReverseTunnelTests.eventually { ReverseTunnelTests.isServing(balancer, "home") }
                let answer = try await balancer.request(headers: [("authorization", "Bearer laptop-token")], json: GatewayTestBed.turnBody)
                #expect(answer.status == 200)
                #expect(connector.simulator.modelRequests.map(\.accountID) == ["home"], "served by the connector's own account")

                try connector.rewrite(local(connector.folder) + users)
                #expect(await connector.server.reload(fromFile: connector.configPath) == .applied("credentials −to-balancer"))
                try await ReverseTunnelTests.eventually { !ReverseTunnelTests.isAvailable(balancer, "home") }
            }
        }
    }
}

extension ReloadTestBed {
    func reload(token: String, trusting ca: String?, port: Int? = nil, method: HTTPMethod = .POST) async throws -> UpstreamClient.CollectedResponse {
        var target = try target(trusting: ca)
        if let port { target = UpstreamTarget(host: "127.0.0.1", port: port, tls: target.tls, serverName: "localhost", hostHeader: "127.0.0.1:\(port)") }
        return try await client.collect(target, method: method, path: "/api/v1/reload", headers: HTTPHeaders([("authorization", "Bearer \(token)")]),
                                        on: GatewayTestBed.group.next()).get()
    }
}

/// Waits until each credential has rate-limit data (its first usage poll answered).
func waitForRateLimits(_ runtime: GatewayRuntime, tags: [String]) async throws {
    let changes = runtime.statusSignal.subscribe()
    func ready() -> Bool {
        let states = runtime.credentialStates
        return tags.allSatisfy { tag in states.first { $0.tag == tag }?.usage.hasData == true }
    }
    if ready() { return }
    for await _ in changes where ready() { return }
}
