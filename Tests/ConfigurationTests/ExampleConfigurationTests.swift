import Configuration
import Foundation
import PoolCore
import Testing

/// The files in `Configs/` are documentation users copy; they must stay valid and mean what they say.
@Suite(.timeLimit(.minutes(1))) struct ExampleConfigurationTests {
    static let configsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Configs")
    let loader = ConfigurationLoader(environment: [
        "HOME": "/home/ann", "HOME_TOKEN": "home-secret", "LAPTOP_TOKEN": "laptop-secret", "CI_TOKEN": "ci-secret", "METRICS_TOKEN": "metrics-secret",
    ])

    func load(_ name: String) throws -> CodexpoolConfiguration {
        try loader.load(contentsOf: Self.configsDirectory.appendingPathComponent(name).path)
    }

    @Test func single() throws {
        let configuration = try load("single.yaml")
        #expect(configuration == CodexpoolConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 8080),
            credentials: [.local(LocalCredentialConfiguration(
                tag: "me", credentialPath: "/home/ann/.codex/auth.json", usagesPath: "/home/ann/.codex/codexpool-usages.json",
                caps: UsageCaps(fiveHour: .unset, weekly: .reserve(5))))],
            logLevel: .info, storage: Self.defaultStorage))
    }

    /// Where history goes when a file says nothing about it.
    static let defaultStorage = StorageConfiguration(enabled: true, path: "/home/ann/.local/state/codexpool/codexpool.sqlite3")

    @Test func balancer() throws {
        let configuration = try load("balancer.yaml")
        #expect(configuration == CodexpoolConfiguration(
            listen: ListenAddress(host: "0.0.0.0", port: 8443),
            tls: InboundTLSConfiguration(certificatePath: "/etc/codexpool/fullchain.pem", keyPath: "/etc/codexpool/privkey.pem"),
            credentials: [
                .local(LocalCredentialConfiguration(
                    tag: "alice-plus", credentialPath: "/var/lib/codexpool/alice/auth.json",
                    usagesPath: "/var/lib/codexpool/alice/usages.json", caps: UsageCaps(fiveHour: .reserve(10)))),
                .local(LocalCredentialConfiguration(
                    tag: "bob-pro", credentialPath: "/var/lib/codexpool/bob/auth.json",
                    usagesPath: "/var/lib/codexpool/bob/usages.json", caps: UsageCaps(weekly: .limit(90)))),
                .external(ExternalCredentialConfiguration(tag: "home", token: Secret("home-secret"), mode: .receiver)),
                .balancer(BalancerConfiguration(
                    tag: "pool", members: ["alice-plus", "bob-pro", "home"], strategy: .leastUsed, rebalanceThreshold: 20)),
            ],
            users: [
                UserConfiguration(name: "laptop", token: Secret("laptop-secret"), credential: "pool", allowExternalUsage: true),
                UserConfiguration(name: "ci", token: Secret("ci-secret"), credential: "pool"),
            ],
            logLevel: .info, metrics: MetricsConfiguration(token: Secret("metrics-secret")), storage: Self.defaultStorage))
    }

    @Test func connector() throws {
        let configuration = try load("connector.yaml")
        #expect(configuration == CodexpoolConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 8080),
            credentials: [
                .local(LocalCredentialConfiguration(
                    tag: "carol-plus", credentialPath: "/home/ann/.codex/auth.json",
                    usagesPath: "/home/ann/.codex/codexpool-usages.json")),
                .local(LocalCredentialConfiguration(tag: "dave-pro", credentialPath: "/home/ann/codex-accounts/dave/auth.json")),
                .external(ExternalCredentialConfiguration(
                    tag: "vps", token: Secret("home-secret"), mode: .connector(EndpointURL(parsing: "https://vps.example.com:8443")!),
                    tls: PeerTLSConfiguration(caPath: "/etc/codexpool/vps-ca.pem"))),
                .balancer(BalancerConfiguration(tag: "home-pool", members: ["carol-plus", "dave-pro"])),
            ],
            users: [UserConfiguration(name: "vps", token: Secret("home-secret"), credential: "home-pool", externalCredential: "vps")],
            logLevel: .info, storage: Self.defaultStorage))
    }

    /// The two halves of the tunnel must agree: the connector's token is the balancer's receiving credential's token.
    @Test func balancerAndConnectorShareTheTunnelToken() throws {
        let balancer = try load("balancer.yaml")
        let connector = try load("connector.yaml")
        guard case .external(let receiving) = balancer.credential(tagged: "home"),
              case .external(let dialing) = connector.credential(tagged: "vps") else {
            Issue.record("the example files lost their tunnel credentials")
            return
        }
        #expect(receiving.token == dialing.token)
        #expect(connector.users.contains { $0.token == dialing.token })
    }
}
