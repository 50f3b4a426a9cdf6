import Configuration
import Foundation
@testable import Gateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import Storage
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator
import Yamux

/// A simulator, auth.json files for its accounts, and a gateway in front of them, all on
/// loopback in the test process.
final class GatewayTestBed: AsyncStoppable {
    let simulator: UpstreamSimulator
    let runtime: GatewayRuntime
    let server: GatewayServer
    let folder: URL
    let ownsSimulator: Bool
    /// For a gateway listening with TLS: the client context trusting the test CA.
    let clientTLS: OpenSSLContext?
    let client = UpstreamClient()
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    struct User {
        var name: String
        var token: String
        var credential: String
        var allowExternalUsage = false
        var isAdmin = false
        var limits = UserLimits()
    }

    /// - Parameters:
    ///   - balancer: pool all accounts behind a least-used balancer tagged `pool`.
    ///   - users: none means open access.
    ///   - authFiles: overrides the auth.json written for an account id.
    ///   - externals: other instances' credentials (appended after the local ones, outside the pool).
    ///   - simulator: a simulator shared with another test bed (which owns it) instead of a new one.
    ///   - pools: further balancers, over any of the credentials above.
    ///   - port: where to listen; 0 is any free port (a restarted instance takes its old one).
    static func start(accounts: [SimulatedAccount], balancer: BalancerStrategy? = .leastUsed, users: [User] = [],
                      authFiles: [String: String] = [:], tls: InboundTLSConfiguration? = nil,
                      externals: [ExternalCredentialConfiguration] = [], simulator shared: UpstreamSimulator? = nil,
                      pools: [BalancerDefinition] = [], metrics: MetricsConfiguration = MetricsConfiguration(),
                      port: Int = 0, tunnelSettings: YamuxConfiguration = YamuxConfiguration(), idleTunnelStreams: Int? = nil,
                      limits: ListenerLimits = patientLimits, fileStore: any CredentialFileStore = FileSystemCredentialStore(),
                      upstreamTimeouts: UpstreamClient.Timeouts = UpstreamClient.Timeouts(),
                      storage: StorageConfiguration = .disabled, clock: any PoolClock = SystemClock(),
                      images: [String: (enabled: Bool, concurrency: Int)] = [:], imagePatience: TimeAmount = .seconds(10),
                      upstreamHeaders: [UpstreamHeader] = []) async throws -> GatewayTestBed {
        let simulator = if let shared { shared } else { try await UpstreamSimulator.start(accounts: accounts, group: group) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-gateway-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var credentials: [CredentialConfiguration] = []
        for account in accounts {
            let path = folder.appendingPathComponent("\(account.accountID).json").path
            let content = authFiles[account.accountID] ?? account.authJSON()
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            let image = images[account.accountID] ?? (true, LocalCredentialConfiguration.defaultImageConcurrency)
            credentials.append(.local(LocalCredentialConfiguration(tag: account.accountID, credentialPath: path,
                                                                   usagesPath: folder.appendingPathComponent("\(account.accountID)-usages.json").path,
                                                                   images: image.enabled, imageConcurrency: image.concurrency)))
        }
        credentials += externals.map { .external($0) }
        if let balancer {
            credentials.append(.balancer(BalancerDefinition(tag: "pool", members: accounts.map(\.accountID), strategy: balancer)))
        }
        credentials += pools.map { .balancer($0) }
        let endpoints = UpstreamEndpoints(
            baseURL: EndpointURL(parsing: simulator.baseURL)!, apiBaseURL: EndpointURL(parsing: "http://127.0.0.1:\(simulator.port)")!,
            usageURL: EndpointURL(parsing: simulator.usageURL)!, tokenURL: EndpointURL(parsing: simulator.tokenURL)!)
        let configuration = CodexpoolConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: port), tls: tls, upstream: endpoints, upstreamHeaders: upstreamHeaders, credentials: credentials,
            users: users.map { UserConfiguration(name: $0.name, token: Secret($0.token), credential: $0.credential, allowExternalUsage: $0.allowExternalUsage,
                                                 isAdmin: $0.isAdmin, limits: $0.limits) },
            metrics: metrics, limits: limits, storage: storage)
        var logger = Logger(label: "gateway-test")
        logger.logLevel = ProcessInfo.processInfo.environment["GATEWAY_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let runtime = try GatewayRuntime(configuration: configuration, logger: logger, clock: clock, eventLoopGroup: group,
                                         upstream: UpstreamClient(timeouts: upstreamTimeouts), fileStore: fileStore,
                                         tunnelSettings: tunnelSettings, idleTunnelStreams: idleTunnelStreams, imagePatience: imagePatience)
        await runtime.start()
        let server = try await GatewayServer.start(runtime: runtime)
        let clientTLS = tls == nil ? nil : try OpenSSLContext.client(TLSClientConfiguration(caFilePath: TestCertificates.shared.caFile))
        return GatewayTestBed(simulator: simulator, runtime: runtime, server: server, folder: folder, ownsSimulator: shared == nil, clientTLS: clientTLS)
    }

    private init(simulator: UpstreamSimulator, runtime: GatewayRuntime, server: GatewayServer, folder: URL, ownsSimulator: Bool, clientTLS: OpenSSLContext?) {
        self.clientTLS = clientTLS
        self.simulator = simulator
        self.ownsSimulator = ownsSimulator
        self.runtime = runtime
        self.server = server
        self.folder = folder
    }

    func stop() async {
        await stop(gracePeriod: .seconds(2))
    }

    /// - Parameter gracePeriod: how long open work may take to finish before it is cut.
    func stop(gracePeriod: Duration) async {
        await server.shutdown(gracePeriod: gracePeriod)
        if ownsSimulator { await simulator.shutdown() }
        client.shutdown()
        try? FileManager.default.removeItem(at: folder)
    }

    var target: UpstreamTarget {
        UpstreamTarget(host: "127.0.0.1", port: server.port, tls: clientTLS, serverName: "localhost", hostHeader: "127.0.0.1:\(server.port)")
    }

    /// One request to the gateway, answered in full.
    func request(_ method: HTTPMethod = .POST, _ path: String = "/v1/responses", headers: [(String, String)] = [],
                 json: String? = nil) async throws -> UpstreamClient.CollectedResponse {
        var fields = HTTPHeaders(headers)
        if json != nil { fields.add(name: "content-type", value: "application/json") }
        return try await client.collect(target, method: method, path: path, headers: fields, body: json.map { Array($0.utf8) },
                                        on: Self.group.next()).get()
    }

    /// The listener's defaults with a header timeout no loaded test machine reaches: a client
    /// that connected can be held back by the scheduler for longer than the real 15 s before it
    /// sends its head. Tests of the header timeout set their own.
    static let patientLimits = ListenerLimits(headerTimeout: 600)

    static let turnBody = #"{"model":"gpt-5.5","stream":true,"store":false,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
}

extension UpstreamClient.CollectedResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first(name: name) }
}
