import Configuration
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct DefaultsAndPathsTests {
    @Test func emptyFileIsTheSingleAccountDefault() throws {
        let configuration = try loadConfiguration("", environment: ["HOME": "/home/ann"])
        #expect(configuration.listen == .default)
        #expect(configuration.tls == nil)
        #expect(configuration.upstream == .openAI)
        #expect(configuration.users.isEmpty)
        #expect(configuration.logLevel == .info)
        #expect(configuration.metrics == MetricsConfiguration(enabled: true, token: nil))
        #expect(configuration.credentials == [
            .local(LocalCredentialConfiguration(tag: "default", credentialPath: "/home/ann/.codex/auth.json")),
        ])
    }

    @Test func metricsTokenIsExpandedAndMetricsCanBeTurnedOff() throws {
        let guarded = try loadConfiguration("metrics:\n  token: ${SCRAPE}\n", environment: ["SCRAPE": "scrape-secret"])
        #expect(guarded.metrics == MetricsConfiguration(enabled: true, token: Secret("scrape-secret")))
        let off = try loadConfiguration("metrics:\n  enabled: false\n")
        #expect(off.metrics.enabled == false)
    }

    @Test func embeddedDefaultHonoursCodexHome() {
        let configuration = ConfigurationLoader(environment: ["CODEX_HOME": "/srv/codex", "HOME": "/home/ann"]).embeddedDefault()
        #expect(configuration.credentials == [.local(LocalCredentialConfiguration(tag: "default", credentialPath: "/srv/codex/auth.json"))])
        #expect(configuration.listen.description == "127.0.0.1:8080")
    }

    @Test func legacySingleCredentialFields() throws {
        let configuration = try loadConfiguration("credential_path: accounts/a.json\nusages_path: /var/u.json\n")
        #expect(configuration.credentials == [
            .local(LocalCredentialConfiguration(tag: "default", credentialPath: "/etc/codexpool/accounts/a.json", usagesPath: "/var/u.json")),
        ])
    }

    @Test func relativePathsFollowTheConfigurationFileAndTildeTheHome() throws {
        let yaml = """
            tls:
              certificate: certs/full.pem
              key: ~/keys/k.pem
            credentials:
              - tag: a
                credential_path: ../a/auth.json
            """
        let configuration = try loadConfiguration(yaml, environment: ["HOME": "/home/ann"])
        #expect(configuration.tls == InboundTLSConfiguration(certificatePath: "/etc/codexpool/certs/full.pem", keyPath: "/home/ann/keys/k.pem"))
        #expect(configuration.credentials[0] == .local(LocalCredentialConfiguration(tag: "a", credentialPath: "/etc/codexpool/../a/auth.json")))
    }

    @Test func capsDefaultToNinetyNineAndFollowReserveOrLimit() throws {
        let yaml = """
            credentials:
              - tag: a
                reserve_5h: 0
                reserve_weekly: 0
              - tag: b
                reserve_5h: 10
                limit_weekly: 80
            users:
              - name: u
                token: t
                credential: a
            """
        let configuration = try loadConfiguration(yaml)
        guard case .local(let a) = configuration.credentials[0], case .local(let b) = configuration.credentials[1] else {
            Issue.record("expected local credentials")
            return
        }
        #expect(a.caps.fiveHourCapPercent == 99 && a.caps.weeklyCapPercent == 99)
        #expect(b.caps == UsageCaps(fiveHour: .reserve(10), weekly: .limit(80)))
        #expect(b.caps.fiveHourCapPercent == 90 && b.caps.weeklyCapPercent == 80)
    }

    @Test func strategiesAcceptBothSpellingsAndDefaultToLeastUsed() throws {
        for (written, expected) in [("least_used", BalancerStrategy.leastUsed), ("round-robin", .roundRobin), ("round_robin", .roundRobin),
                                    ("random", .random), ("fallback", .fallback), ("\"\"", .leastUsed)] {
            let yaml = "credentials:\n  - tag: a\n  - tag: p\n    type: balancer\n    credentials: a\n    strategy: \(written)\nusers: []\n"
            let configuration = try loadConfiguration(yaml)
            #expect(configuration.credentials[1] == .balancer(BalancerConfiguration(tag: "p", members: ["a"], strategy: expected)), "\(written)")
        }
    }

    @Test func singleCredentialServesUsersThatNameNone() throws {
        let configuration = try loadConfiguration("credentials:\n  - tag: only\nusers:\n  - name: u\n    token: t\n")
        #expect(configuration.users == [UserConfiguration(name: "u", token: Secret("t"), credential: "only")])
    }

    @Test func headersTakeOneValueOrAList() throws {
        let configuration = try loadConfiguration("headers:\n  X-One: a\n  X-Many: [b, c]\n")
        #expect(configuration.upstreamHeaders == [UpstreamHeader(name: "X-One", values: ["a"]), UpstreamHeader(name: "X-Many", values: ["b", "c"])])
    }

    @Test func upstreamOverridesKeepOtherDefaults() throws {
        let configuration = try loadConfiguration("upstream:\n  base_url: http://127.0.0.1:9000/backend-api/codex/\n")
        #expect(configuration.upstream.baseURL.description == "http://127.0.0.1:9000/backend-api/codex")
        #expect(configuration.upstream.baseURL.port == 9000)
        #expect(configuration.upstream.tokenURL == UpstreamEndpoints.openAI.tokenURL)
    }

    @Test func externalModesAndPeerTLS() throws {
        let yaml = """
            credentials:
              - tag: fwd
                type: external
                url: http://peer.lan:8080/ocm-peer/
                token: a
              - tag: recv
                type: external
                reverse: true
                token: b
              - tag: conn
                type: external
                url: https://vps.example
                reverse: true
                token: c
                server: 203.0.113.9
                server_port: 8443
                tls:
                  server_name: pool.example
                  pin_sha256:
                    - 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
                    - "e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55"
            users:
              - name: u
                token: t
                credential: fwd
            """
        let configuration = try loadConfiguration(yaml)
        guard case .external(let fwd) = configuration.credentials[0], case .external(let recv) = configuration.credentials[1],
              case .external(let conn) = configuration.credentials[2] else {
            Issue.record("expected external credentials")
            return
        }
        #expect(fwd.mode == .forward(EndpointURL(parsing: "http://peer.lan:8080/ocm-peer")!))
        #expect(fwd.url?.path == "/ocm-peer")
        #expect(recv.mode == .receiver)
        #expect(conn.mode == .connector(EndpointURL(parsing: "https://vps.example")!))
        #expect(conn.dialHost == "203.0.113.9" && conn.dialPort == 8443)
        #expect(conn.tls.serverName == "pool.example")
        #expect(conn.tls.pinnedPublicKeySHA256.count == 2)
        #expect(conn.tls.pinnedPublicKeySHA256[0] == conn.tls.pinnedPublicKeySHA256[1], "base64 and hex spellings of the same digest")
        #expect(conn.tls.pinnedPublicKeySHA256[0].prefix(2) == [0xe3, 0xb0])
    }
}
