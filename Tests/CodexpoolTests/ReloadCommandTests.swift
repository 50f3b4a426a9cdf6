import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing
import UpstreamSimulator

/// A `codexpool serve` process re-reads its file on SIGHUP and on `codexpool reload`; a file
/// with a mistake changes nothing and the command says where the mistake is.
@Suite(.timeLimit(.minutes(2))) struct ReloadCommandTests {
    @Test func sighupAndTheReloadCommandApplyTheFileAndRefuseABrokenOne() async throws {
        let fixture = try await ServeFixture.start(name: "reload-cli")
        try await fixture.stopAfter { () async throws in try await Self.run(fixture) }
    }

    static func run(_ fixture: ServeFixture) async throws {
        let config = fixture.config
        func write(users: String) throws {
            try fixture.writeConfig("""
                storage: {enabled: false}
                credentials:
                  - tag: a
                    credential_path: \(fixture.credentialPath)
                users:
                \(users)
                """)
        }
        try write(users: "  - {name: ops, token: ops-token, credential: a, admin: true}")
        let server = ChildProcess(try ChildProcess.codexpoolExecutable, ["serve", "--config", config.path])
        try server.start()
        defer { server.terminate() }
        await server.waitForStandardError(containing: "ready")
        let port = try #require(UnauthenticatedBodyMemoryTests.port(in: server.standardError))
        let url = "http://127.0.0.1:\(port)"

        // SIGHUP: carol joins.
        try write(users: "  - {name: ops, token: ops-token, credential: a, admin: true}\n  - {name: carol, token: carol-token, credential: a}")
        #expect(try await ChildProcess.runCodexpool(["status", "--url", url], environment: ["CODEXPOOL_TOKEN": "carol-token"]).status == 1)
        kill(server.process.processIdentifier, SIGHUP)
        await server.waitForStandardError(containing: "configuration reloaded: users +carol")
        let carol = try await ChildProcess.runCodexpool(["status", "--url", url], environment: ["CODEXPOOL_TOKEN": "carol-token"])
        #expect(carol.status == 0, "\(carol.stderr)")

        // codexpool reload: carol's token changes.
        try write(users: "  - {name: ops, token: ops-token, credential: a, admin: true}\n  - {name: carol, token: carol-new, credential: a}")
        let reload = try await ChildProcess.runCodexpool(["reload", "--url", url], environment: ["CODEXPOOL_TOKEN": "ops-token"])
        #expect(reload.status == 0, "\(reload.stderr)")
        #expect(reload.stdout == "reloaded: users ~carol\n")
        #expect(try await ChildProcess.runCodexpool(["status", "--url", url], environment: ["CODEXPOOL_TOKEN": "carol-new"]).status == 0)

        // A broken file: nothing changes, the command fails naming file, line and column, and so does the log.
        try write(users: "  - {name: ops, token: ops-token, credential: nowhere, admin: true}")
        let broken = try await ChildProcess.runCodexpool(["reload", "--url", url], environment: ["CODEXPOOL_TOKEN": "ops-token"])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("answered 422"), "\(broken.stderr)")
        #expect(broken.stderr.contains("\(config.path):12:"), "\(broken.stderr)")
        #expect(broken.stderr.contains("nowhere"), "\(broken.stderr)")
        await server.waitForStandardError(containing: "reload refused, the running configuration stays in force")
        #expect(try await ChildProcess.runCodexpool(["status", "--url", url], environment: ["CODEXPOOL_TOKEN": "carol-new"]).status == 0)

        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.exitStatus() == 0, "\(server.standardError)")
        #expect(!server.standardError.contains("carol-new") && !server.standardError.contains("ops-token"), "a token reached the log")
    }
}
