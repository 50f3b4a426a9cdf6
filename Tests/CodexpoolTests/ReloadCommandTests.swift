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
        let account = SimulatedAccount(accountID: "a")
        let simulator = try await UpstreamSimulator.start(accounts: [account], group: MultiThreadedEventLoopGroup.singleton)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-reload-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try account.authJSON().write(to: folder.appendingPathComponent("a.json"), atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("codexpool.yaml")
        func write(users: String) throws {
            try """
                listen: 127.0.0.1:0
                storage: {enabled: false}
                upstream:
                  base_url: \(simulator.baseURL)
                  usage_url: \(simulator.usageURL)
                  token_url: \(simulator.tokenURL)
                credentials:
                  - tag: a
                    credential_path: \(folder.path)/a.json
                users:
                \(users)
                """.write(to: config, atomically: true, encoding: .utf8)
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
        #expect(broken.stderr.contains("\(config.path):11:"), "\(broken.stderr)")
        #expect(broken.stderr.contains("nowhere"), "\(broken.stderr)")
        await server.waitForStandardError(containing: "reload refused, the running configuration stays in force")
        #expect(try await ChildProcess.runCodexpool(["status", "--url", url], environment: ["CODEXPOOL_TOKEN": "carol-new"]).status == 0)

        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.exitStatus() == 0, "\(server.standardError)")
        #expect(!server.standardError.contains("carol-new") && !server.standardError.contains("ops-token"), "a token reached the log")
        await simulator.shutdown()
    }
}
