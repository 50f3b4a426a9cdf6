import Foundation
import PoolCore
import Testing
import Storage

@Suite struct FileSystemCredentialStoreTests {
    @Test func writesAtomicallyWithMode0600AndReadsBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("auth.json").path
        let store = FileSystemCredentialStore()
        #expect(try store.read(path) == nil)
        #expect(!store.isWritable(path))
        let previous = umask(0o022)
        defer { umask(previous) }
        try store.writeAtomically(Data("one".utf8), to: path, permissions: 0o600)
        try store.writeAtomically(Data("two".utf8), to: path, permissions: 0o600)
        #expect(try store.read(path) == Data("two".utf8))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.uint16Value == 0o600)
        #expect(store.isWritable(path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["auth.json"], "no temporary files remain")
    }

    @Test func failedWritesLeaveTheOldFileAndNoTemporary() throws {
        let store = FileSystemCredentialStore()
        #expect(throws: FileStoreError.self) { try store.writeAtomically(Data("x".utf8), to: "/nonexistent-dir/auth.json", permissions: 0o600) }
    }
}
