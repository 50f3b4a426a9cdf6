public import Foundation
public import PoolCore

/// The real file system: temporary file in the same folder, fsync, rename, fsync of the folder.
public struct FileSystemCredentialStore: CredentialFileStore {
    public init() {}

    public func read(_ path: String) throws -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    public func replacementProblem(_ path: String) -> String? {
        let target = Self.resolved(path)
        guard FileManager.default.fileExists(atPath: target) else { return "\(target) does not exist" }
        let folder = Self.folder(of: target)
        // The folder must take a new file and let it be renamed: exactly what a write-back does.
        let probe = folder + "/.codexpool-probe-\(UUID().uuidString).tmp"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            return "the folder \(folder) does not accept a new file (\(String(cString: strerror(errno))))"
        }
        close(descriptor)
        defer { unlink(probe) }
        let renamed = probe + ".renamed"
        guard rename(probe, renamed) == 0 else { return "the folder \(folder) does not allow a rename (\(String(cString: strerror(errno))))" }
        unlink(renamed)
        return nil
    }

    /// A symlinked credential file is written at its target, so the link stays a link.
    static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    static func folder(of path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    /// Creates the folder that holds `path` (and its parents), private (0700), when it is missing.
    public static func createPrivateFolder(holding path: String) throws {
        let folder = folder(of: path)
        guard !FileManager.default.fileExists(atPath: folder) else { return }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    public func writeAtomically(_ data: Data, to requestedPath: String, permissions: UInt16 = 0o600) throws {
        let path = Self.resolved(requestedPath)
        let directory = Self.folder(of: path)
        let name = (path as NSString).lastPathComponent
        let temporary = directory + "/.\(name).\(UUID().uuidString).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(permissions))
        guard descriptor >= 0 else { throw FileStoreError.system("create \(temporary)", errno) }
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            defer { close(descriptor) }
            // The umask may have narrowed the mode at creation; set exactly what was asked.
            guard fchmod(descriptor, mode_t(permissions)) == 0 else { throw FileStoreError.system("chmod \(temporary)", errno) }
            try data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw FileStoreError.system("write \(temporary)", errno)
                    }
                    offset += written
                }
            }
            guard fsync(descriptor) == 0 else { throw FileStoreError.system("fsync \(temporary)", errno) }
        }
        guard rename(temporary, path) == 0 else { throw FileStoreError.system("rename to \(path)", errno) }
        committed = true
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            // Makes the rename itself durable; failure here leaves a correct file, so it is not an error.
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

public enum FileStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    case system(String, Int32)

    public var description: String {
        switch self {
        case .system(let operation, let code): "\(operation): \(String(cString: strerror(code)))"
        }
    }
}
