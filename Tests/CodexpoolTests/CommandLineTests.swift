import Foundation
import TestSupport
import Testing
import UpstreamHTTP

@Suite(.timeLimit(.minutes(3))) struct CommandLineTests {
    static let configs = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Configs")
    static let tokens = ["HOME_TOKEN": "h", "LAPTOP_TOKEN": "l", "CI_TOKEN": "c", "METRICS_TOKEN": "m", "HOME": "/home/ann"]

    @Test func checkConfigAcceptsTheExamples() async throws {
        let files = ["single.yaml", "balancer.yaml", "connector.yaml"].map { Self.configs.appendingPathComponent($0).path }
        let result = try await ChildProcess.runCodexpool(["check-config", "--syntax-only"] + files, environment: Self.tokens)
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines == [
            "\(files[0]): ok: listens on http://127.0.0.1:8080, 1 credential (1 local), no users (open access)",
            "\(files[1]): ok: listens on https://0.0.0.0:8443, 4 credentials (2 local, 1 receiving, 1 balancer), 2 users",
            "\(files[2]): ok: listens on http://127.0.0.1:8080, 4 credentials (2 local, 1 connector, 1 balancer), 1 user",
        ])
        #expect(result.stderr.isEmpty)
    }

    @Test func checkConfigExitsTwoWithEveryError() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = directory.appendingPathComponent("bad.yaml")
        try Data("credentials:\n  - tag: a\n    strategy: x\nlog:\n  level: loud\n".utf8).write(to: bad)
        let good = Self.configs.appendingPathComponent("single.yaml").path

        let result = try await ChildProcess.runCodexpool(["check-config", good, bad.path])
        #expect(result.status == 2)
        #expect(result.stdout.hasPrefix("\(good): ok:"))
        #expect(result.stderr.split(separator: "\n").map(String.init) == [
            "\(bad.path):3:5: credentials[0].strategy: unknown key for a default credential (expected one of: tag, type, credential_path, usages_path, reserve_5h, reserve_weekly, limit_5h, limit_weekly, images, image_concurrency)",
            #"\#(bad.path):5:3: log.level: unknown log level "loud" (expected trace, debug, info, notice, warning, error, critical)"#,
        ])
    }

    /// The deployment units: hardened defaults, the example configuration, and (where systemd is
    /// installed) `systemd-analyze verify` finds nothing to complain about.
    @Test(arguments: ["balancer", "connector"])
    func systemdUnitIsHardenedAndValid(role: String) async throws {
        let unit = try String(contentsOf: Self.configs.appendingPathComponent("codexpool-\(role).service"), encoding: .utf8)
        let lines = Set(unit.split(separator: "\n").map(String.init))
        for required in ["User=codexpool", "StateDirectory=codexpool", "StateDirectoryMode=0700", "UMask=0077", "NoNewPrivileges=yes",
                         "ProtectSystem=strict", "ExecStart=/usr/local/bin/codexpool serve --config /etc/codexpool/\(role).yaml",
                         "EnvironmentFile=/etc/codexpool/\(role).env", "KillSignal=SIGTERM"] {
            #expect(lines.contains(required), "\(role) unit lacks \(required)")
        }
        let analyzer = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        guard FileManager.default.isExecutableFile(atPath: analyzer.path) else { return }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // verify checks that the executable exists: point it at the one just built.
        let copy = folder.appendingPathComponent("codexpool-\(role).service")
        try unit.replacingOccurrences(of: "/usr/local/bin/codexpool", with: try ChildProcess.codexpoolExecutable.path).write(to: copy, atomically: true, encoding: .utf8)
        let verify = ChildProcess(analyzer, ["verify", copy.path], mergeOutput: true)
        try verify.start()
        verify.closeInput()
        #expect(await verify.exitStatus() == 0, "\(verify.standardError)")
        #expect(verify.standardError.isEmpty, "\(verify.standardError)")
    }

    @Test func versionNamesOpenSSL() async throws {
        let result = try await ChildProcess.runCodexpool(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("codexpool 0.1.0 (OpenSSL 3."))
    }

    @Test(arguments: ["serve", "check-config", "status", "demo"])
    func everySubcommandHasHelp(subcommand: String) async throws {
        let result = try await ChildProcess.runCodexpool([subcommand, "--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: codexpool \(subcommand)"))
    }

    @Test func serveRefusesAnInvalidFile() async throws {
        let result = try await ChildProcess.runCodexpool(["serve", "--config", "/nonexistent/codexpool.yaml"])
        #expect(result.status == 2)
        #expect(result.stderr == "/nonexistent/codexpool.yaml: no such file\n")
    }

    @Test(arguments: [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")])
    func serveStopsCleanlyOnSignal(signal: Int32, name: String) async throws {
        // Port 0: the two signal tests run in parallel and must not compete for one port.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("codexpool.yaml")
        try "listen: 127.0.0.1:0\ncredentials:\n  - tag: home\n    credential_path: \(folder.path)/auth.json\n".write(to: config, atomically: true, encoding: .utf8)
        let child = ChildProcess(try ChildProcess.codexpoolExecutable, ["serve", "--config", config.path])
        try child.start()
        await child.waitForStandardError(containing: "ready")
        kill(child.process.processIdentifier, signal)
        let status = await child.exitStatus()
        #expect(status == 0, "\(name): \(child.standardError)")
        #expect(child.standardError.contains("listening on http://127.0.0.1:"))
        #expect(child.standardError.contains("stopped"))
    }
}
