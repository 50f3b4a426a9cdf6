import Foundation
import NIOPosix
import TestSupport
import UpstreamSimulator

/// What the tests that run a `codexpool serve` process start from: a simulator with one
/// account, a private folder holding that account's auth.json, and the configuration's
/// `upstream:` block pointing at the simulator.
final class ServeFixture: AsyncStoppable {
    let simulator: UpstreamSimulator
    let account: SimulatedAccount
    let folder: URL

    var config: URL { folder.appendingPathComponent("codexpool.yaml") }
    var credentialPath: String { folder.appendingPathComponent("\(account.accountID).json").path }

    /// The `upstream:` block, without a trailing line end.
    var upstreamYAML: String {
        """
        upstream:
          base_url: \(simulator.baseURL)
          api_base_url: http://127.0.0.1:\(simulator.port)
          usage_url: \(simulator.usageURL)
          token_url: \(simulator.tokenURL)
        """
    }

    static func start(_ account: SimulatedAccount = SimulatedAccount(accountID: "a"), name: String) async throws -> ServeFixture {
        let simulator = try await UpstreamSimulator.start(accounts: [account], group: MultiThreadedEventLoopGroup.singleton)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let fixture = ServeFixture(simulator: simulator, account: account, folder: folder)
        try account.authJSON().write(toFile: fixture.credentialPath, atomically: true, encoding: .utf8)
        return fixture
    }

    private init(simulator: UpstreamSimulator, account: SimulatedAccount, folder: URL) {
        self.simulator = simulator
        self.account = account
        self.folder = folder
    }

    /// Writes the configuration: `listen` on a free loopback port, the upstream block, then `body`.
    func writeConfig(_ body: String) throws {
        try ("listen: 127.0.0.1:0\n" + upstreamYAML + "\n" + body).write(to: config, atomically: true, encoding: .utf8)
    }

    func stop() async {
        await simulator.shutdown()
        try? FileManager.default.removeItem(at: folder)
    }
}
