public import Foundation

/// File access for credential and statistics files, behind a protocol so the refresh logic can
/// be tested without a disk.
public protocol CredentialFileStore: Sendable {
    /// The file's bytes, or nil when it does not exist.
    func read(_ path: String) throws -> Data?
    /// Replaces the file atomically: a reader sees the old or the new contents, never a mix.
    func writeAtomically(_ data: Data, to path: String, permissions: UInt16) throws
    /// Whether the file can be opened for writing (without changing it).
    func isWritable(_ path: String) -> Bool
}
