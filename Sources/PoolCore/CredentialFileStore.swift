public import Foundation

/// File access for credential and statistics files, behind a protocol so the refresh logic can
/// be tested without a disk.
public protocol CredentialFileStore: Sendable {
    /// The file's bytes, or nil when it does not exist.
    func read(_ path: String) throws -> Data?
    /// Replaces the file atomically: a reader sees the old or the new contents, never a mix.
    func writeAtomically(_ data: Data, to path: String, permissions: UInt16) throws
    /// Why a new version of the file could not be put in place the way `writeAtomically` does
    /// it (a temporary file in its folder, then a rename), or nil when it can. Checked before a
    /// refresh: refresh tokens rotate, and one that cannot be saved is lost at the next restart.
    func replacementProblem(_ path: String) -> String?
}
