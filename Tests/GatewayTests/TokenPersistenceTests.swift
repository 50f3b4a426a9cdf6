import Foundation
@testable import Gateway
import NIOHTTP1
import PoolCore
import Storage
import Synchronization
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// Refresh tokens rotate: one that is refreshed must end up on disk, or be kept, reported and
/// retried until it does.
@Suite(.timeLimit(.minutes(1))) struct TokenPersistenceTests {
    /// The backend stops taking the token the gateway holds, so the next request must refresh.
    static func revokeAccessToken(_ bed: GatewayTestBed) {
        bed.simulator.updateAccount("a") { $0.accessTokens = ["access-a-rotated"] }
    }

    @Test func aFolderThatRefusesNewFilesRefusesTheRefreshAndKeepsTheOldToken() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        await waitForData(bed, tags: ["a"])
        let file = bed.folder.appendingPathComponent("a.json")
        let before = try Data(contentsOf: file)
        Self.revokeAccessToken(bed)
        try ReadOnlyFolder.make(bed.folder)
        let response: UpstreamClient.CollectedResponse
        do {
            response = try await bed.request(json: GatewayTestBed.turnBody)
        } catch {
            ReadOnlyFolder.restore(bed.folder)
            throw error
        }
        ReadOnlyFolder.restore(bed.folder)
        #expect(response.status == 503)
        #expect(response.text.contains("the folder \(bed.folder.path) does not accept a new file"), "\(response.text)")
        #expect(try Data(contentsOf: file) == before, "the old token is kept")
        #expect(!bed.simulator.requests.contains { $0.path == "/oauth/token" }, "no refresh was attempted")
        await bed.stop()
    }

    @Test func aRotatedTokenThatCannotBeWrittenIsReportedEverywhere() async throws {
        let store = FailingWrites()
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil, fileStore: store)
        await waitForData(bed, tags: ["a"])
        store.failing.withLock { $0 = true }
        Self.revokeAccessToken(bed)
        // The 401 refreshes; the write fails; the request is served with the new token all the same.
        #expect(try await bed.request(json: GatewayTestBed.turnBody).status == 200)
        let state = try #require(bed.runtime.credentialStates.first { $0.tag == "a" })
        #expect(state.unsavedTokenSince != nil)
        let status = try await bed.request(.GET, "/ocm/v1/status?detail=true")
        #expect(status.text.contains(#""unsaved_token_since":"#))
        let metrics = try await bed.waitForScrape { $0.value("codexpool_credential_token_unsaved", ["credential": "a"]) == 1 }
        #expect(metrics.value("codexpool_credential_token_unsaved", ["credential": "a"]) == 1)
        await bed.stop()
    }
}

/// The real file system, but credential files cannot be replaced while `failing` (a full disk).
final class FailingWrites: CredentialFileStore, Sendable {
    let failing = Mutex(false)
    private let real = FileSystemCredentialStore()

    struct DiskFull: Error, CustomStringConvertible {
        var description: String { "No space left on device" }
    }

    func read(_ path: String) throws -> Data? { try real.read(path) }
    func replacementProblem(_ path: String) -> String? { real.replacementProblem(path) }

    func writeAtomically(_ data: Data, to path: String, permissions: UInt16) throws {
        if failing.withLock({ $0 }), path.hasSuffix("a.json") { throw DiskFull() }
        try real.writeAtomically(data, to: path, permissions: permissions)
    }
}
