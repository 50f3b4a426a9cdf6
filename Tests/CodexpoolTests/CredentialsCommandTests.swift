import Foundation
import Gateway
import PoolCore
import TestSupport
import Testing
import UpstreamSimulator

/// `codexpool credentials list|disable|enable` against a running instance.
@Suite(.timeLimit(.minutes(2))) struct CredentialsCommandTests {
    @Test func anAdminListsDisablesAndEnablesCredentials() async throws {
        let now = Date()
        let server = try await StatusTestServer.start(accounts: [
            SimulatedAccount(accountID: "alpha", planType: "pro", fiveHourPercent: 25, weeklyPercent: 40, now: now),
            SimulatedAccount(accountID: "beta", planType: "plus", fiveHourPercent: 70, weeklyPercent: 10, now: now),
        ])
        try await server.stopAfter { () async throws in
            let admin = ["CODEXPOOL_TOKEN": "ops-token"]
            let list = try await ChildProcess.runCodexpool(["credentials", "list", "--url", server.url], environment: admin)
            #expect(list.status == 0, "\(list.stderr)")
            let lines = list.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("CREDENTIAL") == true)
            #expect(lines.contains { $0.hasPrefix("alpha") && $0.contains("pro") && $0.contains("25.0 %") && $0.hasSuffix("usable") }, "\(list.stdout)")
            #expect(lines.contains { $0.hasPrefix("beta") && $0.contains("70.0 %") }, "\(list.stdout)")

            let disable = try await ChildProcess.runCodexpool(["credentials", "disable", "alpha", "--url", server.url], environment: admin)
            #expect(disable.status == 0, "\(disable.stderr)")
            #expect(disable.stdout.contains("alpha disabled"))
            #expect(server.runtime.credentialStates.first { $0.tag == "alpha" }?.disabledByAdmin == true)
            let after = try await ChildProcess.runCodexpool(["credentials", "list", "--url", server.url, "--json"], environment: admin)
            #expect(after.stdout.contains(#""why_not":"disabled by admin""#), "\(after.stdout)")
            let status = try await ChildProcess.runCodexpool(["status", "--url", server.url], environment: admin)
            #expect(status.stdout.contains("disabled by admin"), "\(status.stdout)")

            // Not for a user who is no admin, nor for a tag that does not exist.
            let refused = try await ChildProcess.runCodexpool(["credentials", "enable", "alpha", "--url", server.url],
                                                              environment: ["CODEXPOOL_TOKEN": "viewer-token"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("answered 403"), "\(refused.stderr)")
            let unknown = try await ChildProcess.runCodexpool(["credentials", "disable", "gamma", "--url", server.url], environment: admin)
            #expect(unknown.status == 1 && unknown.stderr.contains("no credential tagged gamma"), "\(unknown.stderr)")

            let enable = try await ChildProcess.runCodexpool(["credentials", "enable", "alpha", "--url", server.url], environment: admin)
            #expect(enable.status == 0, "\(enable.stderr)")
            #expect(server.runtime.credentialStates.first { $0.tag == "alpha" }?.disabledByAdmin == false)
        }
    }
}
