import Foundation
import PoolCore
import Storage
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(1))) struct FileSystemCredentialStoreTests {
    @Test func writesAtomicallyWithMode0600AndReadsBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("auth.json").path
        let store = FileSystemCredentialStore()
        #expect(try store.read(path) == nil)
        #expect(store.replacementProblem(path)?.contains("does not exist") == true)
        let previous = umask(0o022)
        defer { umask(previous) }
        try store.writeAtomically(Data("one".utf8), to: path, permissions: 0o600)
        try store.writeAtomically(Data("two".utf8), to: path, permissions: 0o600)
        #expect(try store.read(path) == Data("two".utf8))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.uint16Value == 0o600)
        #expect(store.replacementProblem(path) == nil)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["auth.json"], "no temporary files remain")
    }

    @Test func failedWritesLeaveTheOldFileAndNoTemporary() throws {
        let store = FileSystemCredentialStore()
        #expect(throws: FileStoreError.self) { try store.writeAtomically(Data("x".utf8), to: "/nonexistent-dir/auth.json", permissions: 0o600) }
    }

    @Test func aFolderThatRefusesNewFilesIsNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("auth.json").path
        let store = FileSystemCredentialStore()
        try store.writeAtomically(Data("one".utf8), to: path, permissions: 0o600)
        try ReadOnlyFolder.make(directory)
        defer { ReadOnlyFolder.restore(directory) }
        // The file itself is still writable in place; the folder is what a safe write-back needs.
        let problem = try #require(store.replacementProblem(path))
        #expect(problem.contains("the folder \(directory.path) does not accept a new file"))
    }

    @Test func aSymlinkedFileIsWrittenAtItsTarget() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-store-\(UUID().uuidString)")
        let real = directory.appendingPathComponent("accounts")
        try FileManager.default.createDirectory(at: real, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = real.appendingPathComponent("alice.json").path
        let link = directory.appendingPathComponent("auth.json").path
        let store = FileSystemCredentialStore()
        try store.writeAtomically(Data("one".utf8), to: target, permissions: 0o600)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        #expect(store.replacementProblem(link) == nil)
        try store.writeAtomically(Data("two".utf8), to: link, permissions: 0o600)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target, "still a link")
        #expect(try store.read(target) == Data("two".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: real.path) == ["alice.json"])
    }
}
