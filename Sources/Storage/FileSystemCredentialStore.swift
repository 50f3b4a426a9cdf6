public import Foundation
public import PoolCore

/// The real file system: temporary file in the same folder, fsync, rename, fsync of the folder.
public struct FileSystemCredentialStore: CredentialFileStore {
    public init() {}

    public func read(_ path: String) throws -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    public func isWritable(_ path: String) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        close(descriptor)
        return true
    }

    public func writeAtomically(_ data: Data, to path: String, permissions: UInt16 = 0o600) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\(name).\(UUID().uuidString).tmp"
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
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
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
