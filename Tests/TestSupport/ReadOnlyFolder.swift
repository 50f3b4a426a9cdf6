public import Foundation
import Testing

/// Makes a folder refuse new files, also for root (which ignores permission bits): `chmod 555`,
/// and where that is not enough the immutable attribute (`chattr +i`). `restore` undoes it.
public enum ReadOnlyFolder {
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    public static func make(_ folder: URL) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: folder.path)
        if refusesNewFiles(folder) { return }
        _ = try? run("/usr/bin/chattr", ["+i", folder.path])
        guard refusesNewFiles(folder) else {
            throw Unavailable(description: "cannot make \(folder.path) read-only for this user: chmod 555 and chattr +i (e2fsprogs) did not stop writes")
        }
    }

    public static func restore(_ folder: URL) {
        _ = try? run("/usr/bin/chattr", ["-i", folder.path])
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
    }

    static func refusesNewFiles(_ folder: URL) -> Bool {
        let probe = folder.appendingPathComponent(".probe-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: probe.path, contents: Data()) else { return true }
        try? FileManager.default.removeItem(at: probe)
        return false
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = SpawnedProcess()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = .nullDevice
        process.standardError = .nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
