import Configuration
import Foundation
import Gateway
import Logging
import NIOPosix
import OpenSSLTLS
import PoolCore
import UpstreamSimulator

/// Everything `codexpool demo` runs in one process: a simulated Codex backend with four accounts,
/// a balancer ("the VPS") with two of them, and a connector ("home") with the other two that
/// dials the balancer over TLS (a certificate made on the spot, pinned by the connector).
final class DemoFleet: Sendable {
    static let userToken = "demo-user-token"
    /// The dashboard's admin (may enable and disable credentials).
    static let adminToken = "demo-admin-token"
    /// The connector's tunnel token (a demo value; real ones come from the environment).
    static let tunnelToken = "demo-tunnel-token"

    let simulator: UpstreamSimulator
    let balancer: GatewayRuntime
    let connector: GatewayRuntime
    /// Where the Codex CLI and `codexpool status` talk to the balancer (plain HTTP on loopback).
    let codexListener: GatewayServer
    /// Where the connector dials in (TLS).
    let tunnelListener: GatewayServer
    let connectorListener: GatewayServer
    let folder: URL

    /// Plans and use chosen so the least-used balancer spreads new sessions over both nodes.
    static let accounts: [(id: String, plan: String, fiveHour: Double, weekly: Double, fiveHourResetIn: Int, weeklyResetIn: Int)] = [
        ("vps-pro", "pro", 38, 34, 2 * 3600 + 600, 3 * 86_400),
        ("vps-plus", "plus", 71, 58, 47 * 60, 86_400 + 5 * 3600),
        ("home-pro", "pro", 22, 20, 4 * 3600, 5 * 86_400),
        ("home-plus", "plus", 9, 12, 3 * 3600 + 1800, 6 * 86_400),
    ]

    private init(simulator: UpstreamSimulator, balancer: GatewayRuntime, connector: GatewayRuntime, codexListener: GatewayServer,
                 tunnelListener: GatewayServer, connectorListener: GatewayServer, folder: URL) {
        self.simulator = simulator
        self.balancer = balancer
        self.connector = connector
        self.codexListener = codexListener
        self.tunnelListener = tunnelListener
        self.connectorListener = connectorListener
        self.folder = folder
    }

    static func start(listen: ListenAddress, logger: Logger) async throws -> DemoFleet {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        do {
            return try await start(in: folder, listen: listen, logger: logger)
        } catch {
            // Nothing of a failed start stays behind (the process ends with the error).
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
    }

    private static func start(in folder: URL, listen: ListenAddress, logger: Logger) async throws -> DemoFleet {
        let reply = "Hello from the codexpool demo! This answer was streamed by the simulated Codex backend through the pool."
        let simulator = try await UpstreamSimulator.start(accounts: accounts.map { account in
            var simulated = SimulatedAccount(accountID: account.id, planType: account.plan, fiveHourPercent: account.fiveHour, weeklyPercent: account.weekly,
                                             fiveHourResetIn: account.fiveHourResetIn, weeklyResetIn: account.weeklyResetIn, reply: reply, deltaCount: 12,
                                             inputTokens: 1800, outputTokens: 240, cachedTokens: 1200, percentPerTurn: 4)
            simulated.eventIntervalMilliseconds = 15
            return simulated
        })
        let upstream = UpstreamEndpoints(
            baseURL: EndpointURL(parsing: simulator.baseURL)!, apiBaseURL: EndpointURL(parsing: "http://127.0.0.1:\(simulator.port)")!,
            usageURL: EndpointURL(parsing: simulator.usageURL)!, tokenURL: EndpointURL(parsing: simulator.tokenURL)!)
        var localCredentials: [String: CredentialConfiguration] = [:]
        for account in accounts {
            let path = folder.appendingPathComponent("\(account.id).json").path
            guard FileManager.default.createFile(atPath: path, contents: Data(simulator.account(account.id)!.authJSON().utf8), attributes: [.posixPermissions: 0o600]) else {
                throw DemoError("cannot write \(path)")
            }
            localCredentials[account.id] = .local(LocalCredentialConfiguration(tag: account.id, credentialPath: path))
        }

        // The balancer's TLS certificate, made now; the connector pins its key.
        let certificate = try SelfSignedCertificate.generate(commonName: "codexpool demo", alternativeNames: ["DNS:localhost", "IP:127.0.0.1"])
        let certificatePath = folder.appendingPathComponent("balancer-cert.pem").path
        let keyPath = folder.appendingPathComponent("balancer-key.pem").path
        guard FileManager.default.createFile(atPath: certificatePath, contents: Data(certificate.certificatePEM.utf8)),
              FileManager.default.createFile(atPath: keyPath, contents: Data(certificate.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw DemoError("cannot write the demo certificate to \(folder.path)")
        }

        let tunnelToken = Secret(tunnelToken)
        let balancerConfiguration = CodexpoolConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 0), tls: InboundTLSConfiguration(certificatePath: certificatePath, keyPath: keyPath),
            upstream: upstream,
            credentials: [localCredentials["vps-pro"]!, localCredentials["vps-plus"]!,
                          .external(ExternalCredentialConfiguration(tag: "home", token: tunnelToken, mode: .receiver)),
                          .balancer(BalancerDefinition(tag: "pool", members: ["vps-pro", "vps-plus", "home"], strategy: .leastUsed))],
            users: [UserConfiguration(name: "demo", token: Secret(userToken), credential: "pool", allowExternalUsage: true,
                                      limits: UserLimits(requestsPerDay: 5_000, costPerMonth: 500, maxConcurrentSessions: 16)),
                    UserConfiguration(name: "admin", token: Secret(adminToken), credential: "pool", allowExternalUsage: true, isAdmin: true)],
            // The history behind the dashboard, in the demo's own folder (gone with it).
            storage: StorageConfiguration(enabled: true, path: folder.appendingPathComponent("history.sqlite3").path))
        let balancer = try GatewayRuntime(configuration: balancerConfiguration, logger: logger.labelled("balancer"))
        await balancer.start()
        let tunnelListener = try await GatewayServer.start(runtime: balancer)
        let codexListener: GatewayServer
        do {
            codexListener = try await GatewayServer.start(runtime: balancer, host: listen.host, port: listen.port, plainHTTP: true)
        } catch {
            await tunnelListener.shutdown(gracePeriod: .zero)
            await simulator.shutdown()
            throw DemoError("cannot listen on \(listen) (\(error)); pick another address with --listen")
        }

        let connectorConfiguration = CodexpoolConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 0), upstream: upstream,
            credentials: [localCredentials["home-pro"]!, localCredentials["home-plus"]!,
                          .balancer(BalancerDefinition(tag: "home-pool", members: ["home-pro", "home-plus"], strategy: .leastUsed)),
                          .external(ExternalCredentialConfiguration(
                              tag: "vps", token: tunnelToken, mode: .connector(EndpointURL(parsing: "https://127.0.0.1:\(tunnelListener.port)")!),
                              tls: PeerTLSConfiguration(pinnedPublicKeySHA256: [certificate.publicKeySHA256])))],
            users: [UserConfiguration(name: "vps", token: tunnelToken, credential: "home-pool")])
        let connector = try GatewayRuntime(configuration: connectorConfiguration, logger: logger.labelled("connector"))
        await connector.start()
        let connectorListener = try await GatewayServer.start(runtime: connector)
        return DemoFleet(simulator: simulator, balancer: balancer, connector: connector, codexListener: codexListener,
                         tunnelListener: tunnelListener, connectorListener: connectorListener, folder: folder)
    }

    /// Waits until the connector's tunnel is up (it dials at once; the first try normally works).
    func waitForTunnel(timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while balancer.tunnelHealth["home"]?.online != true {
            guard ContinuousClock.now < deadline else { throw DemoError("the connector did not reach the balancer within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        // And until the balancer knows the connector's use, so the first sessions are spread well.
        while !(balancer.credentialStates.first { $0.tag == "home" }?.usage.hasData ?? false) {
            guard ContinuousClock.now < deadline else { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Which node an account belongs to, for the demo's output.
    static func node(of accountID: String) -> String {
        accountID.hasPrefix("home-") ? "connector (home)" : "balancer (VPS)"
    }

    func shutdown() async {
        await connectorListener.shutdown(gracePeriod: .seconds(2))
        await codexListener.shutdown(gracePeriod: .seconds(2))
        await tunnelListener.shutdown(gracePeriod: .seconds(2))
        await simulator.shutdown()
        try? FileManager.default.removeItem(at: folder)
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Logger {
    fileprivate func labelled(_ node: String) -> Logger {
        var logger = self
        logger[metadataKey: "node"] = "\(node)"
        return logger
    }
}
