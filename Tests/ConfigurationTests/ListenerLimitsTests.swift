import Configuration
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1))) struct ListenerLimitsTests {
    let loader = ConfigurationLoader(environment: [:])

    @Test func defaultsAreTheDocumentedOnes() throws {
        let configuration = try loader.load(yaml: "listen: 127.0.0.1:8080", source: "test.yaml", baseDirectory: "/")
        #expect(configuration.limits == ListenerLimits())
        #expect(configuration.limits.maxBody == 32 << 20)
        #expect(configuration.limits.maxConnections == 4096)
        #expect(configuration.limits.headerTimeout == 15)
        #expect(configuration.limits.idleTimeout == 120)
        #expect(configuration.allowOpenAccess == false)
    }

    @Test func sizesAndDurationsInTheirUnits() throws {
        let configuration = try loader.load(yaml: """
            limits:
              max_header_bytes: 16KiB
              max_body: 1MB
              max_websocket_message: 2097152
              header_timeout: 500ms
              idle_timeout: 2m
              max_connections: 10
              failed_auth_per_minute: 3
            """, source: "test.yaml", baseDirectory: "/")
        #expect(configuration.limits == ListenerLimits(maxHeaderBytes: 16 << 10, maxBody: 1_000_000, maxWebSocketMessage: 2 << 20,
                                                       headerTimeout: 0.5, idleTimeout: 120, maxConnections: 10, failedAuthenticationsPerMinute: 3))
    }

    @Test func openAccessBeyondLoopbackIsAnOptIn() throws {
        let configuration = try loader.load(yaml: """
            listen: 0.0.0.0:8080
            allow_open_access: true
            metrics:
              public: true
            """, source: "test.yaml", baseDirectory: "/")
        #expect(configuration.allowOpenAccess)
        #expect(configuration.metrics.isPublic)
        // Loopback needs neither.
        #expect(throws: Never.self) { try loader.load(yaml: "listen: localhost:8080", source: "test.yaml", baseDirectory: "/") }
        #expect(throws: Never.self) { try loader.load(yaml: "listen: \"[::1]:8080\"", source: "test.yaml", baseDirectory: "/") }
    }
}
