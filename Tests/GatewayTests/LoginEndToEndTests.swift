import Foundation
@testable import Gateway
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// An account signed in with `codexpool login --config … --tag …` while a balancer serves that
/// credential: the balancer picks the new tokens up by itself, and the real Codex CLI completes a
/// turn with them.
@Suite(.timeLimit(.minutes(2))) struct LoginEndToEndTests {
    @Test(arguments: CodexCLI.Version.allCases)
    func aCredentialSignedInByCodexpoolLoginServesTheRealCLI(version: CodexCLI.Version) async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", planType: "pro")],
                                                 users: [.init(name: "cli", token: "login-e2e-token", credential: "pool")])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            // The account's old sign-in is revoked: nothing the balancer holds works any more.
            bed.simulator.updateAccount("a") {
                $0.accessTokens = ["revoked-\(UUID().uuidString)"]
                $0.refreshToken = "revoked-refresh-\(UUID().uuidString)"
            }
            let authPath = bed.folder.appendingPathComponent("a.json").path
            let config = bed.folder.appendingPathComponent("codexpool.yaml")
            try """
            upstream:
              auth_url: http://127.0.0.1:\(bed.simulator.port)
            credentials:
              - tag: a
                credential_path: \(authPath)
            """.write(to: config, atomically: true, encoding: .utf8)

            let login = ChildProcess(try ChildProcess.codexpoolExecutable, ["login", "--config", config.path, "--tag", "a"], environment: [:], mergeOutput: true)
            try login.start()
            await login.waitForStandardError(containing: "Waiting for approval")
            let code = try #require(login.standardError.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.count == 9 && $0.dropFirst(4).first == "-" })
            bed.simulator.approveDeviceLogin(userCode: code, account: "a")
            #expect(await login.exitStatus() == 0, "\(login.standardError)")
            #expect(login.standardError.contains("Wrote \(authPath)"))

            // The balancer reads the file again by itself and serves with the new tokens.
            let fresh = try #require(try CodexAuthFile(data: Data(contentsOf: URL(fileURLWithPath: authPath))).tokens?.accessToken)
            let home = try CodexCLI.makeHome(baseURL: "http://127.0.0.1:\(bed.server.port)/v1", token: "login-e2e-token", webSocket: true, retries: 2)
            defer { try? FileManager.default.removeItem(at: home) }
            try await waitUntil("the balancer took the new sign-in", timeout: .seconds(20)) {
                bed.runtime.credentialStates.first { $0.tag == "a" }?.usability(now: Date()).isUsable == true
            }
            let before = bed.simulator.modelRequests.count
            let run = try await CodexCLI.exec("say hi", home: home, version: version)
            #expect(run.status == 0, "codex failed: \(run.stderr)\n\(run.stdout)")
            #expect(run.stdout.contains("Hello from a."))
            let served = bed.simulator.modelRequests.dropFirst(before)
            #expect(!served.isEmpty && served.allSatisfy { $0.accountID == "a" && $0.header("authorization") == "Bearer \(fresh)" })
        }
    }
}
