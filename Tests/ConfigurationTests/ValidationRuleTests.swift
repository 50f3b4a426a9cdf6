import Configuration
import Testing

/// One failing YAML per validation rule, with the exact message and position it must produce.
struct ValidationCase: CustomTestStringConvertible, Sendable {
    let name: String
    let yaml: String
    let expected: String
    var testDescription: String { name }
}

@Suite(.timeLimit(.minutes(1))) struct ValidationRuleTests {
    static let cases: [ValidationCase] = [
        ValidationCase(name: "unknown strategy", yaml: """
            credentials:
              - tag: a
              - tag: pool
                type: balancer
                credentials: [a]
                strategy: fastest
            """, expected: #"test.yaml:6:5: credentials[1].strategy: unknown balancer strategy "fastest" (expected least-used, round-robin, random or fallback)"#),
        ValidationCase(name: "negative rebalance threshold", yaml: """
            credentials:
              - tag: a
              - tag: pool
                type: balancer
                credentials: a
                rebalance_threshold: -5
            """, expected: "test.yaml:6:5: credentials[1].rebalance_threshold: must not be negative, got -5"),
        ValidationCase(name: "rebalancing without least-used", yaml: """
            credentials:
              - tag: a
              - tag: pool
                type: balancer
                credentials: a
                strategy: round_robin
                rebalance_threshold: 5
            """, expected: "test.yaml:7:5: credentials[1].rebalance_threshold: rebalancing only applies to the least-used strategy, not round-robin"),
        ValidationCase(name: "legacy credential_path with credentials", yaml: """
            credential_path: /a/auth.json
            credentials:
              - tag: a
            """, expected: "test.yaml:1:1: credential_path: cannot be combined with credentials; set it on each credential instead"),
        ValidationCase(name: "legacy usages_path with credentials", yaml: """
            credentials:
              - tag: a
            usages_path: /a/usages.json
            """, expected: "test.yaml:3:1: usages_path: cannot be combined with credentials; set it on each credential instead"),
        ValidationCase(name: "reserve and limit together", yaml: """
            credentials:
              - tag: a
                reserve_5h: 10
                limit_5h: 80
            """, expected: "test.yaml:4:5: credentials[0].limit_5h: reserve_5h and limit_5h are mutually exclusive; keep a reserve or set a limit, not both"),
        ValidationCase(name: "weekly reserve and limit together", yaml: """
            credentials:
              - tag: a
                limit_weekly: 50
                reserve_weekly: 3
            """, expected: "test.yaml:3:5: credentials[0].limit_weekly: reserve_weekly and limit_weekly are mutually exclusive; keep a reserve or set a limit, not both"),
        ValidationCase(name: "reserve over 99", yaml: """
            credentials:
              - tag: a
                reserve_5h: 100
            """, expected: "test.yaml:3:5: credentials[0].reserve_5h: must be at most 99, got 100"),
        ValidationCase(name: "limit over 100", yaml: """
            credentials:
              - tag: a
                limit_weekly: 101
            """, expected: "test.yaml:3:5: credentials[0].limit_weekly: must be at most 100, got 101"),
        ValidationCase(name: "negative reserve", yaml: """
            credentials:
              - tag: a
                reserve_weekly: -1
            """, expected: "test.yaml:3:5: credentials[0].reserve_weekly: must be at least 0, got -1"),
        ValidationCase(name: "reserve not a number", yaml: """
            credentials:
              - tag: a
                reserve_weekly: ten
            """, expected: #"test.yaml:3:5: credentials[0].reserve_weekly: expected a whole number from 0 to 99, got "ten""#),
        ValidationCase(name: "missing tag", yaml: """
            credentials:
              - credential_path: /a/auth.json
            """, expected: "test.yaml:2:5: credentials[0].tag: every credential needs a tag"),
        ValidationCase(name: "bad tag characters", yaml: """
            credentials:
              - tag: my pool
            """, expected: #"test.yaml:2:5: credentials[0].tag: a tag is 1 to 64 letters, digits or the characters . - _ @, got "my pool""#),
        ValidationCase(name: "unknown credential type", yaml: """
            credentials:
              - tag: a
                type: claude
            """, expected: #"test.yaml:3:5: credentials[0].type: unknown credential type "claude" (expected default, external or balancer)"#),
        ValidationCase(name: "duplicate tag", yaml: """
            credentials:
              - tag: a
              - tag: a
                credential_path: /b/auth.json
            users:
              - name: u
                token: t
                credential: a
            """, expected: #"test.yaml:3:5: credentials[1].tag: duplicate credential tag "a" (first used on line 2)"#),
        ValidationCase(name: "external without token", yaml: """
            credentials:
              - tag: peer
                type: external
                url: https://peer.example
            """, expected: "test.yaml:2:5: credentials[0].token: an external credential requires a token"),
        ValidationCase(name: "external with empty token", yaml: """
            credentials:
              - tag: peer
                type: external
                url: https://peer.example
                token: ""
            """, expected: "test.yaml:5:5: credentials[0].token: must not be empty"),
        ValidationCase(name: "external without url or reverse", yaml: """
            credentials:
              - tag: peer
                type: external
                token: k
            """, expected: "test.yaml:2:5: credentials[0]: an external credential needs url (to forward to that instance) or reverse: true (to accept its connector)"),
        ValidationCase(name: "external with a bad url", yaml: """
            credentials:
              - tag: peer
                type: external
                url: ftp://peer.example
                token: k
            """, expected: #"test.yaml:4:5: credentials[0].url: expected an http:// or https:// URL without query or user info, got "ftp://peer.example""#),
        ValidationCase(name: "dial override on a receiver", yaml: """
            credentials:
              - tag: peer
                type: external
                reverse: true
                token: k
                server: 10.0.0.1
            """, expected: "test.yaml:6:5: credentials[0].server: only applies when url is set (this credential waits for its connector to dial in)"),
        ValidationCase(name: "server_port out of range", yaml: """
            credentials:
              - tag: peer
                type: external
                url: https://peer.example
                token: k
                server_port: 70000
            """, expected: "test.yaml:6:5: credentials[0].server_port: must be at most 65535, got 70000"),
        ValidationCase(name: "peer tls on plain http", yaml: """
            credentials:
              - tag: peer
                type: external
                url: http://peer.example
                token: k
                tls:
                  insecure: true
            """, expected: "test.yaml:6:5: credentials[0].tls: only applies to an https:// url"),
        ValidationCase(name: "insecure with pins", yaml: """
            credentials:
              - tag: peer
                type: external
                url: https://peer.example
                token: k
                tls:
                  pin_sha256: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
                  insecure: true
            """, expected: "test.yaml:8:7: credentials[0].tls.insecure: insecure: true turns certificate checks off, so ca and pin_sha256 would be ignored; remove one or the other"),
        ValidationCase(name: "malformed pin", yaml: """
            credentials:
              - tag: peer
                type: external
                url: https://peer.example
                token: k
                tls:
                  pin_sha256: [47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=, abcd]
            """, expected: "test.yaml:7:66: credentials[0].tls.pin_sha256[1]: expected the base64 (or hex) SHA-256 of the server's public key, 32 bytes"),
        ValidationCase(name: "balancer without members", yaml: """
            credentials:
              - tag: a
              - tag: pool
                type: balancer
                credentials: []
            users:
              - name: u
                token: t
                credential: pool
            """, expected: "test.yaml:5:5: credentials[1].credentials: a balancer needs at least one member credential"),
        ValidationCase(name: "balancer with unknown member", yaml: """
            credentials:
              - tag: a
              - tag: pool
                type: balancer
                credentials: [a, bob]
            users:
              - name: u
                token: t
                credential: pool
            """, expected: #"test.yaml:5:22: credentials[1].credentials[1]: unknown credential "bob" (known: a)"#),
        ValidationCase(name: "balancer in balancer", yaml: """
            credentials:
              - tag: a
              - tag: inner
                type: balancer
                credentials: [a]
              - tag: outer
                type: balancer
                credentials:
                  - inner
            users:
              - name: u
                token: t
                credential: outer
            """, expected: #"test.yaml:9:9: credentials[2].credentials[0]: "inner" is a balancer; a balancer's members must be default or external credentials"#),
        ValidationCase(name: "member listed twice", yaml: """
            credentials:
              - tag: a
              - tag: pool
                type: balancer
                credentials: [a, a]
            users:
              - name: u
                token: t
                credential: pool
            """, expected: #"test.yaml:5:22: credentials[1].credentials[1]: "a" is listed twice"#),
        ValidationCase(name: "receivers sharing a token", yaml: """
            credentials:
              - tag: home
                type: external
                reverse: true
                token: same
              - tag: office
                type: external
                reverse: true
                token: same
            users:
              - name: u
                token: t
                credential: home
            """, expected: #"test.yaml:9:5: credentials[1].token: same token as credential "home"; every external credential that accepts connectors needs its own token"#),
        ValidationCase(name: "user without credential among several", yaml: """
            credentials:
              - tag: a
              - tag: b
            users:
              - name: u
                token: t
            """, expected: "test.yaml:5:5: users[0].credential: required when there is more than one credential (known: a, b)"),
        ValidationCase(name: "user with unknown credential", yaml: """
            credentials:
              - tag: a
            users:
              - name: u
                token: t
                credential: b
            """, expected: #"test.yaml:6:5: users[0].credential: unknown credential "b" (known: a)"#),
        ValidationCase(name: "user with unknown external credential", yaml: """
            credentials:
              - tag: a
            users:
              - name: u
                token: t
                external_credential: peer
            """, expected: #"test.yaml:6:5: users[0].external_credential: unknown credential "peer""#),
        ValidationCase(name: "external_credential naming a default credential", yaml: """
            credentials:
              - tag: a
            users:
              - name: u
                token: t
                credential: a
                external_credential: a
            """, expected: #"test.yaml:7:5: users[0].external_credential: "a" is a default credential; external_credential must name an external credential"#),
        ValidationCase(name: "user without token", yaml: """
            users:
              - name: u
            """, expected: "test.yaml:2:5: users[0].token: every user needs a token"),
        ValidationCase(name: "user without name", yaml: """
            users:
              - token: t
            """, expected: "test.yaml:2:5: users[0].name: every user needs a name"),
        ValidationCase(name: "duplicate user names", yaml: """
            users:
              - name: u
                token: t1
              - name: u
                token: t2
            """, expected: #"test.yaml:4:5: users[1].name: duplicate user name "u" (first used on line 2)"#),
        ValidationCase(name: "users sharing a token", yaml: """
            users:
              - name: u
                token: hunter2-secret
              - name: v
                token: hunter2-secret
            """, expected: #"test.yaml:5:5: users[1].token: same token as user "u"; every user needs their own token"#),
        ValidationCase(name: "bad allow_external_usage", yaml: """
            users:
              - name: u
                token: t
                allow_external_usage: sometimes
            """, expected: #"test.yaml:4:5: users[0].allow_external_usage: expected true or false, got "sometimes""#),
        ValidationCase(name: "unknown log level", yaml: """
            log:
              level: verbose
            """, expected: #"test.yaml:2:3: log.level: unknown log level "verbose" (expected trace, debug, info, notice, warning, error, critical)"#),
        ValidationCase(name: "unknown metrics key", yaml: """
            metrics:
              path: /stats
            """, expected: #"test.yaml:2:3: metrics.path: unknown key for metrics (expected one of: enabled, token, public)"#),
        ValidationCase(name: "empty metrics token", yaml: """
            metrics:
              token: ""
            """, expected: "test.yaml:2:3: metrics.token: must not be empty"),
        ValidationCase(name: "open access beyond loopback", yaml: """
            listen: 0.0.0.0:8443
            metrics:
              enabled: false
            """, expected: "test.yaml:1:1: users: listening on 0.0.0.0:8443 with no users would serve anyone who can reach it; "
                + "add users (each with a token) or set allow_open_access: true"),
        ValidationCase(name: "open metrics beyond loopback", yaml: """
            listen: "[::]:8443"
            allow_open_access: true
            """, expected: "test.yaml:1:1: metrics: listening on [::]:8443, /metrics would be open to everyone; set metrics.token, "
                + "metrics.enabled: false, or metrics.public: true"),
        ValidationCase(name: "unknown limits key", yaml: """
            limits:
              max_bodies: 1MiB
            """, expected: #"test.yaml:2:3: limits.max_bodies: unknown key for limits (expected one of: max_header_bytes, max_body, max_websocket_message, header_timeout, idle_timeout, max_connections, failed_auth_per_minute, max_tunnel_streams)"#),
        ValidationCase(name: "limits size without a unit it knows", yaml: """
            limits:
              max_body: 32 parsecs
            """, expected: #"test.yaml:2:3: limits.max_body: expected a size such as 32MiB, 64KiB or a number of bytes, got "32 parsecs""#),
        ValidationCase(name: "limits duration out of range", yaml: """
            limits:
              header_timeout: 2h
            """, expected: "test.yaml:2:3: limits.header_timeout: must be from 0.1 to 3600.0 seconds, got 7200.0"),
        ValidationCase(name: "bad listen address", yaml: """
            listen: 8080
            """, expected: #"test.yaml:1:1: listen: expected host:port such as 127.0.0.1:8080 or [::1]:8080, got "8080""#),
        ValidationCase(name: "inbound tls without key", yaml: """
            tls:
              certificate: /etc/codexpool/cert.pem
            """, expected: "test.yaml:1:1: tls.key: inbound tls needs a key (PEM private key file)"),
        ValidationCase(name: "bad upstream url", yaml: """
            upstream:
              base_url: chatgpt.com
            """, expected: #"test.yaml:2:3: upstream.base_url: expected an http:// or https:// URL without query or user info, got "chatgpt.com""#),
        ValidationCase(name: "bad header name", yaml: """
            headers:
              "Bad Header": x
            """, expected: "test.yaml:2:3: headers.Bad Header: not a valid HTTP header name"),
        ValidationCase(name: "header value with a line break", yaml: """
            headers:
              X-Note: "a\\r\\nInjected: 1"
            """, expected: "test.yaml:2:3: headers.X-Note: header values must not contain line breaks or control characters"),
        ValidationCase(name: "list where a value belongs", yaml: """
            listen: [a, b]
            """, expected: "test.yaml:1:1: listen: expected a single value, got a list"),
        ValidationCase(name: "credentials not a list", yaml: """
            credentials:
              tag: a
            """, expected: "test.yaml:1:1: credentials: expected a list of credentials, got a mapping"),
        ValidationCase(name: "document not a mapping", yaml: """
            - just
            - a list
            """, expected: "test.yaml:1:1: expected a mapping (key: value pairs) for the configuration, got a list"),
    ]

    @Test(arguments: cases)
    func ruleReportsItsMessageAndPosition(_ validation: ValidationCase) {
        #expect(configurationIssues(validation.yaml) == [validation.expected])
    }
}
