import Testing

@Suite(.timeLimit(.minutes(1))) struct UnknownKeyTests {
    @Test func typoAtTheTopLevelSuggestsTheKey() {
        #expect(configurationIssues("listne: 127.0.0.1:1\n") == [
            "test.yaml:1:1: listne: unknown key for the configuration (did you mean listen?)",
        ])
    }

    @Test func unknownKeysAreFoundAtEveryDepth() {
        let yaml = """
            tls:
              certificate: /c.pem
              key: /k.pem
              ciphers: all
            upstream:
              base_url: https://example.test
              proxy: http://p
            credentials:
              - tag: a
                resrve_5h: 10
              - tag: peer
                type: external
                url: https://peer.example
                token: k
                tls:
                  ca: /ca.pem
                  verify: false
            users:
              - name: u
                token: t
                credential: a
                role: admin
            log:
              level: info
              format: json
            """
        #expect(configurationIssues(yaml) == [
            "test.yaml:4:3: tls.ciphers: unknown key for inbound tls (expected one of: certificate, key)",
            "test.yaml:7:3: upstream.proxy: unknown key for upstream (expected one of: base_url, api_base_url, usage_url, token_url, auth_url)",
            "test.yaml:10:5: credentials[0].resrve_5h: unknown key for a default credential (did you mean reserve_5h?)",
            "test.yaml:17:7: credentials[1].tls.verify: unknown key for peer tls (expected one of: ca, server_name, pin_sha256, insecure)",
            "test.yaml:22:5: users[0].role: unknown key for a user (expected one of: name, token, credential, external_credential, allow_external_usage, admin, limits)",
            "test.yaml:25:3: log.format: unknown key for log (expected one of: level)",
        ])
    }

    @Test func keysOfAnotherCredentialTypeAreRejected() {
        let yaml = """
            credentials:
              - tag: a
                strategy: least-used
                token: x
            """
        #expect(configurationIssues(yaml) == [
            "test.yaml:3:5: credentials[0].strategy: unknown key for a default credential (expected one of: tag, type, credential_path, usages_path, reserve_5h, reserve_weekly, limit_5h, limit_weekly, images, image_concurrency)",
            "test.yaml:4:5: credentials[0].token: unknown key for a default credential (expected one of: tag, type, credential_path, usages_path, reserve_5h, reserve_weekly, limit_5h, limit_weekly, images, image_concurrency)",
        ])
    }

    @Test func everyProblemOfAFileIsReportedInFileOrder() {
        let yaml = """
            listen: nowhere
            credentials:
              - tag: a
                reserve_5h: 200
              - tag: pool
                type: balancer
                credentials: [a, ghost]
                strategy: fastest
            log:
              level: loud
            """
        let issues = configurationIssues(yaml)
        #expect(issues.map { $0.split(separator: ":").prefix(3).joined(separator: ":") } == [
            "test.yaml:1:1", "test.yaml:4:5", "test.yaml:7:22", "test.yaml:8:5", "test.yaml:10:3",
        ])
    }
}
