import Foundation
import Testing

/// Runs the built `codexpool` executable as a child process and collects its output.
final class CodexpoolProcess: @unchecked Sendable {
    /// The executable next to the test bundle in the build folder.
    static var executable: URL {
        get throws {
            let buildFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            let candidates = [buildFolder, buildFolder.deletingLastPathComponent()].map { $0.appendingPathComponent("codexpool") }
            return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                                "codexpool was not built next to the tests in \(buildFolder.path)")
        }
    }

    let process = Process()
    private let output = Pipe()
    private let errors = Pipe()
    private let lock = NSLock()
    private var collectedError = Data()
    private var waiters: [(String, CheckedContinuation<Void, Never>)] = []

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = try Self.executable
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { mine, _ in mine }
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            self?.received(handle.availableData)
        }
    }

    /// Runs to completion and returns the exit status, standard output and standard error.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try CodexpoolProcess(arguments, environment: environment)
        try child.process.run()
        let stdout = child.output.fileHandleForReading.readDataToEndOfFile()
        let status = await child.exitStatus()
        return (status, String(decoding: stdout, as: UTF8.self), child.standardError)
    }

    func start() throws { try process.run() }

    var standardError: String {
        lock.withLock { String(decoding: collectedError, as: UTF8.self) }
    }

    /// Suspends until standard error contains `text` (an event, not a timer).
    func waitForStandardError(containing text: String) async {
        await withCheckedContinuation { continuation in
            lock.withLock {
                if String(decoding: collectedError, as: UTF8.self).contains(text) {
                    continuation.resume()
                } else {
                    waiters.append((text, continuation))
                }
            }
        }
    }

    func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                self.process.waitUntilExit()
                continuation.resume(returning: self.process.terminationStatus)
            }
        }
    }

    private func received(_ data: Data) {
        let ready: [CheckedContinuation<Void, Never>] = lock.withLock {
            if data.isEmpty {
                // End of file: nothing more will arrive; release every waiter so none hangs.
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
    }
}
