public import Foundation
import Testing

/// A child process (the built `codexpool`, `openssl`, the Go yamux peer …) whose output the
/// test waits on by content, never by time.
public final class ChildProcess: @unchecked Sendable {
    /// The first `name` on this process's PATH (`python3` is pip's, which may not be /usr/bin's).
    public static func onPath(_ name: String) -> URL? {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return folders.map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// The `codexpool` executable next to the test bundle in the build folder.
    public static var codexpoolExecutable: URL {
        get throws {
            let buildFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            let candidates = [buildFolder, buildFolder.deletingLastPathComponent()].map { $0.appendingPathComponent("codexpool") }
            return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                                "codexpool was not built next to the tests in \(buildFolder.path)")
        }
    }

    public let process = SpawnedProcess()
    private let output = Pipe()
    private let errors = Pipe()
    private let input = Pipe()
    private let lock = NSLock()
    private var collectedError = Data()
    private var waiters: [(String, CheckedContinuation<Void, Never>)] = []

    /// - Parameter mergeOutput: collect standard output together with standard error (for
    ///   tools such as `openssl s_server` that announce readiness on standard output).
    public init(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil, mergeOutput: Bool = false,
                currentDirectory: URL? = nil) {
        process.executableURL = executable
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.arguments = arguments
        var variables = environment.map { $0.merging(["PATH": "/usr/bin:/bin"]) { mine, _ in mine } } ?? ProcessInfo.processInfo.environment
        // A `codexpool serve` keeps its history under $XDG_STATE_HOME: one of its own per child,
        // never the user's.
        if variables["XDG_STATE_HOME"] == nil {
            variables["XDG_STATE_HOME"] = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-test-state/\(UUID().uuidString)").path
        }
        process.environment = variables
        process.standardOutput = .pipe(mergeOutput ? errors : output)
        process.standardError = .pipe(errors)
        process.standardInput = .pipe(input)
    }

    /// Runs `codexpool` to completion and returns the exit status, standard output and standard error.
    public static func runCodexpool(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await run(try codexpoolExecutable, arguments, environment: environment)
    }

    /// Runs any program to completion: its exit status, standard output and standard error.
    /// - Parameter environment: nil passes on this process's own.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = ChildProcess(executable, arguments, environment: environment)
        try child.start()
        child.closeInput()
        // Read on a plain thread: a blocking read would hold one of the few cooperative threads.
        let handle = child.output.fileHandleForReading
        let stdout = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: PipeIO.toEnd(handle)) }.start()
        }
        let status = await child.exitStatus()
        return (status, String(decoding: stdout, as: UTF8.self), child.standardError)
    }

    /// Starts the process and a thread that reads its standard error until end of file (a plain
    /// blocking read: `FileHandle.readabilityHandler` can crash libdispatch on Linux at EOF).
    public func start() throws {
        process.terminationHandler = { [weak self] process in self?.exited(process.terminationStatus) }
        try process.run()
        let handle = errors.fileHandleForReading
        let reader = Thread { [self] in
            while true {
                let data = PipeIO.some(handle)
                self.received(data)
                if data.isEmpty { return }
            }
        }
        reader.start()
    }

    public func writeInput(_ text: String) { PipeIO.write(Data(text.utf8), to: input.fileHandleForWriting) }

    public func closeInput() { try? input.fileHandleForWriting.close() }

    /// Standard error (and output, when merged) so far.
    public var standardError: String {
        lock.withLock { String(decoding: collectedError, as: UTF8.self) }
    }

    /// Everything written to standard output, after the process ended.
    public func remainingOutput() -> String {
        String(decoding: PipeIO.toEnd(output.fileHandleForReading), as: UTF8.self)
    }

    /// Suspends until standard error contains `text` (an event, not a timer), the stream ends
    /// (the child died), or `timeout` passes — then the child is stopped, so nothing waits forever.
    public func waitForStandardError(containing text: String, timeout: Duration = .seconds(90)) async {
        let watchdog = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.giveUp("no \"\(text)\" on standard error within \(timeout)")
        }
        defer { watchdog.cancel() }
        await withCheckedContinuation { continuation in
            lock.withLock {
                if String(decoding: collectedError, as: UTF8.self).contains(text) || errorEnded {
                    continuation.resume()
                } else {
                    waiters.append((text, continuation))
                }
            }
        }
    }

    /// The exit status, once the process has exited *and* its standard error was read to the end
    /// (so `standardError` is complete). A child still running after `timeout` is killed.
    public func exitStatus(timeout: Duration = .seconds(120)) async -> Int32 {
        let watchdog = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.giveUp("still running after \(timeout)")
        }
        defer { watchdog.cancel() }
        return await withCheckedContinuation { continuation in
            let status: Int32? = lock.withLock {
                if let exitCode, errorEnded { return exitCode }
                exitWaiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// A wait ran out: note why (it shows in `standardError`) and kill the child; its end
    /// releases every waiter.
    private func giveUp(_ reason: String) {
        // Whatever still holds standard error open (a grandchild), nobody waits on it any longer.
        let textWaiters = lock.withLock {
            collectedError.append(Data("\n[test harness: \(reason); killing the child]\n".utf8))
            errorEnded = true
            defer { waiters.removeAll() }
            return waiters.map(\.1)
        }
        textWaiters.forEach { $0.resume() }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        releaseExitWaitersIfDone()
    }

    /// Stops the process if it is still running (a test that gives up must not leave it behind).
    public func terminate() {
        if process.isRunning { process.terminate() }
    }

    private var exitCode: Int32?
    /// Standard error reached its end: everything the child wrote is in `collectedError`.
    private var errorEnded = false
    private var exitWaiters: [CheckedContinuation<Int32, Never>] = []

    private func exited(_ status: Int32) {
        lock.withLock { exitCode = status }
        releaseExitWaitersIfDone()
    }

    private func releaseExitWaitersIfDone() {
        let (waiters, status): ([CheckedContinuation<Int32, Never>], Int32) = lock.withLock {
            guard let exitCode, errorEnded else { return ([], 0) }
            defer { exitWaiters.removeAll() }
            return (exitWaiters, exitCode)
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    private func received(_ data: Data) {
        let ready: [CheckedContinuation<Void, Never>] = lock.withLock {
            if data.isEmpty {
                // End of file: nothing more will arrive; release every waiter so none hangs.
                errorEnded = true
                let all = waiters.map(\.1)
                waiters.removeAll()
                return all
            }
            collectedError.append(data)
            let text = String(decoding: collectedError, as: UTF8.self)
            let (met, pending) = waiters.reduce(into: ([CheckedContinuation<Void, Never>](), [(String, CheckedContinuation<Void, Never>)]())) {
                if text.contains($1.0) { $0.0.append($1.1) } else { $0.1.append($1) }
            }
            waiters = pending
            return met
        }
        ready.forEach { $0.resume() }
        if data.isEmpty { releaseExitWaitersIfDone() }
    }
}
