import Configuration
import Foundation
@testable import Gateway
import NIOHTTP1
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// `codexpool codex-config` and the ChatGPT-mode sign-in it writes, used by the real Codex 0.163
/// (codex-wire-2026.md §6): turns go through, the sign-in survives Codex's own refresh rules,
/// and a changed user token revokes it.
@Suite(.timeLimit(.minutes(3))) struct CodexSignInTests {
    static let user = GatewayTestBed.User(name: "alice", token: "alice-token-1234", credential: "pool")

    static func startBed() async throws -> GatewayTestBed {
        let now = Date()
        return try await GatewayTestBed.start(accounts: [
            SimulatedAccount(accountID: "a", planType: "plus", fiveHourPercent: 30, weeklyPercent: 40, now: now),
            SimulatedAccount(accountID: "b", planType: "pro", fiveHourPercent: 10, weeklyPercent: 20, now: now),
        ], users: [user], tls: InboundTLSConfiguration(certificatePath: TestCertificates.shared.serverCertificate,
                                                                            keyPath: TestCertificates.shared.serverKey))
    }

    /// Runs `codexpool codex-config` for the bed's TLS listener into a new Codex home.
    @discardableResult
    static func configure(_ bed: GatewayTestBed, home: URL? = nil, extraArguments: [String] = []) async throws -> (home: URL, output: String) {
        let home = home ?? FileManager.default.temporaryDirectory.appendingPathComponent("codex-sign-in-\(UUID().uuidString)")
        let result = try await run(bed, home: home, extraArguments: extraArguments)
        #expect(result.status == 0, "\(result.stderr)")
        return (home, result.stdout)
    }

    static func run(_ bed: GatewayTestBed, home: URL, extraArguments: [String] = []) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await ChildProcess.runCodexpool(
            ["codex-config", "--url", "https://localhost:\(bed.server.port)", "--ca", TestCertificates.shared.caFile, "--codex-home", home.path]
                + extraArguments,
            environment: ["CODEXPOOL_TOKEN": user.token])
    }

    @Test func theCommandWritesAWorkingSignIn() async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            let (home, output) = try await Self.configure(bed)
            defer { try? FileManager.default.removeItem(at: home) }
            #expect(output.contains("export CODEX_CA_CERTIFICATE=\(home.path)/codexpool-ca.pem"), "\(output)")

            let config = try String(contentsOf: home.appendingPathComponent("config.toml"), encoding: .utf8)
            #expect(config.contains(#"chatgpt_base_url = "https://localhost:\#(bed.server.port)/backend-api/""#))
            #expect(config.contains(#"base_url = "https://localhost:\#(bed.server.port)/backend-api/codex""#))
            #expect(config.contains("requires_openai_auth = true"))
            #expect(config.contains(#"status_line = ["model-with-reasoning", "five-hour-limit", "weekly-limit", "context-remaining"]"#))
            #expect(!config.contains(Self.user.token), "the user token stays out of the Codex config")

            let authPath = home.appendingPathComponent("auth.json").path
            let attributes = try FileManager.default.attributesOfItem(atPath: authPath)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let auth = try CodexAuthFile(data: try Data(contentsOf: URL(fileURLWithPath: authPath)))
            let tokens = try #require(auth.tokens)
            #expect(tokens.accountID == "codexpool-alice")
            #expect(!tokens.accessToken.contains(Self.user.token))
            #expect(auth.accessTokenExpiry.map { $0 > Date().addingTimeInterval(5 * 365 * 86_400) } == true)

            // The sign-in is a bearer the gateway takes for alice; a forged or altered one it refuses.
            let usage = try await bed.request(.GET, "/backend-api/wham/usage", headers: [("authorization", "Bearer \(tokens.accessToken)")])
            #expect(usage.status == 200)
            let forged = ChatGPTModeToken.issue(userToken: Secret("not-alice-token"), accountID: "codexpool-alice", planType: "pro", now: Date())
            let refused = try await bed.request(.GET, "/backend-api/wham/usage", headers: [("authorization", "Bearer \(forged)")])
            #expect(refused.status == 401)

            // A second run replaces its own files; a config it did not write needs --force and is kept.
            try await Self.configure(bed, home: home)
            try "model = \"mine\"\n".write(to: home.appendingPathComponent("config.toml"), atomically: true, encoding: .utf8)
            let refusedRun = try await Self.run(bed, home: home)
            #expect(refusedRun.status == 1)
            #expect(refusedRun.stderr.contains("was not written by codexpool; pass --force"), "\(refusedRun.stderr)")
            try await Self.configure(bed, home: home, extraArguments: ["--force"])
            #expect(try String(contentsOf: home.appendingPathComponent("config.toml.before-codexpool"), encoding: .utf8) == "model = \"mine\"\n")

            // The bearer-token setup (0.147, scripts): the user token as the provider's bearer.
            try await Self.configure(bed, home: home, extraArguments: ["--bearer"])
            let bearer = try String(contentsOf: home.appendingPathComponent("config.toml"), encoding: .utf8)
            #expect(bearer.contains(#"base_url = "https://localhost:\#(bed.server.port)/v1""#))
            #expect(bearer.contains(#"experimental_bearer_token = "\#(Self.user.token)""#))
            #expect(!bearer.contains("requires_openai_auth"))

            // A wrong token writes nothing.
            let wrong = try await ChildProcess.runCodexpool(["codex-config", "--url", "https://localhost:\(bed.server.port)", "--ca",
                                                             TestCertificates.shared.caFile, "--codex-home", home.path + "-wrong"],
                                                            environment: ["CODEXPOOL_TOKEN": "wrong"])
            #expect(wrong.status == 1)
            #expect(wrong.stderr.contains("answered 401"), "\(wrong.stderr)")
            #expect(!FileManager.default.fileExists(atPath: home.path + "-wrong"))
        }
    }

    @Test func codex0163CompletesTurnsWithTheSignInAndNeverRefreshesIt() async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let (home, _) = try await Self.configure(bed)
            defer { try? FileManager.default.removeItem(at: home) }
            try Self.keepOffline(home)
            // Where Codex would refresh a ChatGPT sign-in: any request there is a failure of the sign-in.
            let refreshTrap = "\(bed.simulator.tokenURL)?trap=codex-refresh"
            let environment = ["CODEX_CA_CERTIFICATE": "\(home.path)/codexpool-ca.pem", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": refreshTrap]

            let first = try await CodexCLI.exec("say hi", home: home, version: .v0_163, environment: environment)
            #expect(first.status == 0, "codex failed: \(first.stderr)\n\(first.stdout)")
            #expect(first.stdout.contains("Hello from b."), "\(first.stdout)")
            #expect(bed.simulator.requests.contains { $0.path.hasSuffix("/responses") }, "the turn reached upstream")

            // Nine days later by Codex's clock of the sign-in: past its eight-day refresh age.
            let authURL = home.appendingPathComponent("auth.json")
            var document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: authURL)) as? [String: Any])
            let accessBefore = (document["tokens"] as? [String: Any])?["access_token"] as? String
            document["last_refresh"] = "2026-01-01T00:00:00.000Z"
            try JSONSerialization.data(withJSONObject: document).write(to: authURL)

            let second = try await CodexCLI.exec("say hi again", home: home, version: .v0_163, environment: environment)
            #expect(second.status == 0, "codex failed after the refresh age: \(second.stderr)\n\(second.stdout)")
            #expect(!bed.simulator.requests.contains { $0.path.hasPrefix("/oauth") }, "Codex tried to refresh the sign-in")
            let after = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: authURL)) as? [String: Any])
            #expect((after["tokens"] as? [String: Any])?["access_token"] as? String == accessBefore)
        }
    }

    /// Why the sign-in is a JWT with a far `exp`: the plain user token in its place, past the
    /// eight-day refresh age, makes Codex refresh it (and fail) — the trap above does see refreshes.
    @Test func codex0163RefreshesAPlainTokenPastItsRefreshAge() async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            let (home, _) = try await Self.configure(bed)
            defer { try? FileManager.default.removeItem(at: home) }
            try Self.keepOffline(home)
            let authURL = home.appendingPathComponent("auth.json")
            var document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: authURL)) as? [String: Any])
            var tokens = try #require(document["tokens"] as? [String: Any])
            tokens["access_token"] = Self.user.token
            document["tokens"] = tokens
            document["last_refresh"] = "2026-01-01T00:00:00.000Z"
            try JSONSerialization.data(withJSONObject: document).write(to: authURL)
            let environment = ["CODEX_CA_CERTIFICATE": "\(home.path)/codexpool-ca.pem",
                               "CODEX_REFRESH_TOKEN_URL_OVERRIDE": "\(bed.simulator.tokenURL)?trap=codex-refresh"]
            _ = try await CodexCLI.exec("say hi", home: home, version: .v0_163, environment: environment)
            #expect(bed.simulator.requests.contains { $0.path.hasPrefix("/oauth") }, "Codex did not try to refresh a plain token")
        }
    }

    /// Settings that keep a test's Codex off the internet: top-level keys after the first line
    /// (before any table), tables at the end.
    static func keepOffline(_ home: URL) throws {
        let url = home.appendingPathComponent("config.toml")
        var lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.insert(contentsOf: ["model = \"gpt-5.5\"", "check_for_update_on_startup = false"], at: 1)
        lines += ["[analytics]", "enabled = false", "[features]", "plugins = false", "apps = false",
                  // The TUI would first offer its newer model; "seen" keeps the screen on the composer.
                  "[notice.model_migrations]", "\"gpt-5.5\" = \"gpt-6-sol\"", ""]
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    }
}

extension CodexSignInTests {
    /// Runs the 0.163 TUI in a terminal with the Codex home `codex-config` wrote; stops it and the
    /// app-server daemon it starts from that home afterwards, whatever happened.
    static func withTUI(home: URL, _ body: (TerminalSession) async throws -> Void) async throws {
        let workspace = home.appendingPathComponent("workspace")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        let codex = try CodexCLI.locate(.v0_163)
        let terminal = try await TerminalSession.start(command: codex.path, environment: [
            "CODEX_HOME": home.path, "HOME": home.path, "CODEX_CA_CERTIFICATE": "\(home.path)/codexpool-ca.pem"], directory: workspace)
        do {
            try await body(terminal)
        } catch {
            await terminal.close()
            await TerminalSession.killProcesses(matching: home.path)
            throw error
        }
        await terminal.close()
        await TerminalSession.killProcesses(matching: home.path)
    }

    /// The pool in 0.163's own display: after a turn, the status line and `/status` show the
    /// user's aggregated 5-hour and weekly use as `GET /ocm/v1/status` reports it (±1 for
    /// rounding), and the numbers follow when the pool's use changes.
    @Test func codex0163ShowsThePoolsLimitsInItsStatusLineAndStatus() async throws {
        let bed = try await Self.startBed()
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a", "b"])
            let (home, _) = try await Self.configure(bed)
            defer { try? FileManager.default.removeItem(at: home) }
            try Self.keepOffline(home)
            try await Self.withTUI(home: home) { terminal in
                try await terminal.waitForScreen(containing: "Ask Codex")
                try await terminal.submit("say hi")
                try await terminal.waitForScreen(containing: "Hello from b.")
                var expected = try await Self.percentLeft(bed)
                try await terminal.waitForScreen("the pool's use in the status line (\(expected))") { screen in
                    Self.statusLine(in: screen).map { Self.close($0, expected) } ?? false
                }
                try await terminal.submit("/status")
                try await terminal.waitForScreen("the pool's use in /status (\(expected))") { screen in
                    Self.statusPanel(in: screen).map { Self.close($0, expected) } ?? false
                }

                // The pool's use changes (b is now busy); a turn brings its new limits to codexpool,
                // and the next /status shows the new aggregate.
                bed.simulator.updateAccount("b") {
                    $0.rateLimits.fiveHour?.usedPercent = 70
                    $0.rateLimits.weekly.usedPercent = 60
                }
                let completedBefore = bed.simulator.snapshot.completedResponses
                try await terminal.submit("say more")
                try await bed.simulator.waitUntil { $0.completedResponses > completedBefore }
                let alice = AuthenticatedUser(name: Self.user.name, provider: "pool", scope: .nonExternal, viewer: .everyone)
                let usedBefore = 100 - Double(expected.fiveHour)
                try await waitUntil("codexpool saw b's new use") { bed.runtime.aggregate(for: alice).fiveHourUtilization > usedBefore + 10 }
                expected = try await Self.percentLeft(bed)
                try await terminal.submit("/status")
                try await terminal.waitForScreen("the new use in /status (\(expected))") { screen in
                    Self.statusPanel(in: screen).map { Self.close($0, expected) } ?? false
                }
            }
        }
    }

    struct PercentLeft: Equatable, CustomStringConvertible {
        var fiveHour: Int
        var weekly: Int
        var description: String { "5h \(fiveHour)% left, weekly \(weekly)% left" }
    }

    static func close(_ shown: PercentLeft, _ expected: PercentLeft) -> Bool {
        abs(shown.fiveHour - expected.fiveHour) <= 1 && abs(shown.weekly - expected.weekly) <= 1
    }

    /// What is left of alice's pool by the operator status (`100 − utilization`).
    static func percentLeft(_ bed: GatewayTestBed) async throws -> PercentLeft {
        let response = try await bed.request(.GET, "/ocm/v1/status", headers: [("authorization", "Bearer \(user.token)")])
        let status = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        let fiveHour = try #require(status["five_hour_utilization"] as? Double)
        let weekly = try #require(status["weekly_utilization"] as? Double)
        return PercentLeft(fiveHour: Int((100 - fiveHour).rounded()), weekly: Int((100 - weekly).rounded()))
    }

    /// `5h 87% left · weekly 77% left` in the status line (the last such line on the screen).
    static func statusLine(in screen: String) -> PercentLeft? {
        let lines = screen.split(separator: "\n").filter { $0.contains("5h ") && $0.contains("weekly ") && $0.contains("% left") }
        guard let line = lines.last else { return nil }
        return percentages(after: ["5h ", "weekly "], in: String(line))
    }

    /// The `5h limit:` and `Weekly limit:` rows of the last `/status` panel.
    static func statusPanel(in screen: String) -> PercentLeft? {
        let lines = screen.split(separator: "\n").map(String.init)
        guard let fiveHour = lines.last(where: { $0.contains("5h limit:") }), let weekly = lines.last(where: { $0.contains("Weekly limit:") }),
              let five = percentages(after: ["]"], in: fiveHour)?.fiveHour, let week = percentages(after: ["]"], in: weekly)?.fiveHour else { return nil }
        return PercentLeft(fiveHour: five, weekly: week)
    }

    /// The numbers before "% left" that follow each marker in turn.
    private static func percentages(after markers: [String], in line: String) -> PercentLeft? {
        var rest = Substring(line)
        var numbers: [Int] = []
        for marker in markers {
            guard let start = rest.range(of: marker) else { return nil }
            rest = rest[start.upperBound...]
            let digits = rest.drop { $0 == " " }.prefix { $0.isNumber }
            guard let number = Int(digits), rest.drop(while: { $0 == " " }).dropFirst(digits.count).hasPrefix("% left") else { return nil }
            numbers.append(number)
        }
        return PercentLeft(fiveHour: numbers[0], weekly: numbers.count > 1 ? numbers[1] : numbers[0])
    }
}
