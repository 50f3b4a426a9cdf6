public import Foundation

/// A program running in a detached tmux session of its own tmux server (so tests never touch a
/// user's tmux), driven like a person at a terminal: keys in, the screen's text out.
public final class TerminalSession: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let socket = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-tmux-\(UUID().uuidString.prefix(8))").path
    private let name = "main"
    /// The tmux server, in the foreground (`-D`) as this process's child: a daemonised one would
    /// outlive the test and confuse the waits on its commands.
    private var server: ChildProcess?

    /// Starts `command` (run by `sh -c` with exactly `environment`) in `directory`, on a
    /// `columns`×`rows` screen.
    public static func start(command: String, environment: [String: String], directory: URL, columns: Int = 160,
                             rows: Int = 48) async throws -> TerminalSession {
        let session = TerminalSession()
        let server = ChildProcess(URL(fileURLWithPath: "/usr/bin/tmux"), ["-S", session.socket, "-f", "/dev/null", "-D"])
        try server.start()
        session.server = server
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: session.socket) {
            guard ContinuousClock.now < deadline else {
                await session.close()
                throw Failure(description: "the tmux server did not start: \(server.standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.shellQuoted($0.value))" }.joined(separator: " ")
        try await session.tmux(["new-session", "-d", "-s", session.name, "-x", "\(columns)", "-y", "\(rows)", "-c", directory.path,
                                "env -i PATH=/usr/bin:/bin TERM=xterm-256color \(assignments) \(command)"])
        return session
    }

    private init() {}

    /// Types `text` (literally) and, unless told otherwise, presses Enter.
    public func type(_ text: String, enter: Bool = true) async throws {
        try await tmux(["send-keys", "-t", name, "-l", text])
        if enter { try await press("Enter") }
    }

    /// Types `text` into a prompt line shown as `promptMark text` and presses Enter until the
    /// program has taken it (the last prompt line on the screen — the one being edited — no longer
    /// holds it): a TUI that treats fast typing as a paste may take the first Enter as part of it.
    public func submit(_ text: String, promptMark: String = "› ", timeout: Duration = .seconds(30)) async throws {
        try await type(text, enter: false)
        let line = promptMark + text
        try await waitForScreen(containing: line, timeout: timeout)
        let deadline = ContinuousClock.now + timeout
        func editing(_ screen: String) -> Bool {
            screen.split(separator: "\n").last { $0.hasPrefix(promptMark) }.map { $0.trimmingCharacters(in: .whitespaces) == line } ?? false
        }
        while editing(try await screen()) {
            guard ContinuousClock.now < deadline else { throw Failure(description: "\"\(text)\" was never taken:\n\(try await screen())") }
            try await press("Enter")
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Presses one key by its tmux name (`Enter`, `Escape`, `C-c` …).
    public func press(_ key: String) async throws {
        try await tmux(["send-keys", "-t", name, key])
    }

    /// The screen's text now.
    public func screen() async throws -> String {
        try await tmux(["capture-pane", "-p", "-t", name])
    }

    /// Waits until the screen shows something `condition` accepts, checking every 100 ms, and
    /// fails with the last screen after `timeout`.
    @discardableResult
    public func waitForScreen(timeout: Duration = .seconds(60), _ what: String, _ condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            last = (try? await screen()) ?? last
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "the terminal never showed \(what) within \(timeout); last screen:\n\(last)")
    }

    @discardableResult
    public func waitForScreen(containing text: String, timeout: Duration = .seconds(60)) async throws -> String {
        try await waitForScreen(timeout: timeout, "\"\(text)\"") { $0.contains(text) }
    }

    /// Ends the program and the tmux server.
    public func close() async {
        _ = try? await tmux(["kill-server"])
        if let server {
            server.terminate()
            _ = await server.exitStatus(timeout: .seconds(20))
        }
        try? FileManager.default.removeItem(atPath: socket)
    }

    /// Runs one tmux command through `sh`, its output into files: the tmux server is forked from
    /// the first command and would hold a pipe open for ever.
    @discardableResult
    private func tmux(_ arguments: [String]) async throws -> String {
        let output = URL(fileURLWithPath: "\(socket)-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: output) }
        let command = (["/usr/bin/tmux", "-S", socket] + arguments).map(Self.shellQuoted).joined(separator: " ")
        let child = ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "\(command) >\(Self.shellQuoted(output.path)) 2>&1 </dev/null"])
        try child.start()
        child.closeInput()
        let status = await child.exitStatus(timeout: .seconds(20))
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw Failure(description: "tmux \(arguments.first ?? "") failed (\(status)): \(text)\(child.standardError)") }
        return text
    }

    /// Stops every process whose command line contains `text` (e.g. a daemon a program left
    /// running from its own folder).
    public static func killProcesses(matching text: String) async {
        let child = ChildProcess(URL(fileURLWithPath: "/usr/bin/pkill"), ["-KILL", "-f", text])
        guard (try? child.start()) != nil else { return }
        child.closeInput()
        _ = await child.exitStatus(timeout: .seconds(20))
    }

    private static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
