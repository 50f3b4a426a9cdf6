import Foundation
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct LocalCredentialSourceTests {
    let path = "/creds/auth.json"
    let clock = ManualClock()
    let store = MemoryFileStore()
    let endpoint = ScriptedTokenEndpoint()

    func source() -> LocalCredentialSource {
        LocalCredentialSource(tag: "a", path: path, store: store, refresher: endpoint, clock: clock, transportRetryDelays: [.zero, .zero])
    }

    func currentFile() throws -> CodexAuthFile { try CodexAuthFile(data: store[path] ?? Data()) }

    /// Scenario 4: start without a file; it appears later and the next look (≥ 2 s later) loads it.
    @Test("Scenario 4: start without a file; it appears later and the next look (≥ 2 s later) loads it") func delayedCredentialFile() async throws {
        let credential = source()
        #expect(await credential.reload() == .unavailable(
            "credential file /creds/auth.json does not exist (yet); run `codex login` or copy an auth.json there"))
        await #expect(throws: CredentialAccessError.unavailable(
            "credential a is unavailable: credential file /creds/auth.json does not exist (yet); run `codex login` or copy an auth.json there")) {
            try await credential.accessGrant()
        }
        store[path] = authJSON(lastRefresh: t0)
        clock.advance(1)
        #expect(await credential.reloadIfDue() == nil, "not retried within two seconds")
        clock.advance(1)
        #expect(await credential.reloadIfDue() == .loaded(changed: true, accountChanged: false))
        let grant = try await credential.accessGrant()
        #expect(grant == AccessGrant(token: Secret("access-1"), accountID: "acct-1", isAPIKey: false))
    }

    @Test func availabilityFollowsTheFile() async throws {
        let credential = source()
        store[path] = authJSON(lastRefresh: t0)
        #expect(await credential.reload() == .loaded(changed: true, accountChanged: false))
        #expect(await credential.reload() == .loaded(changed: false, accountChanged: false))
        store[path] = Data("{ broken".utf8)
        #expect(await credential.reload() == .unavailable("credential file /creds/auth.json is not a JSON object"))
        store[path] = Data(#"{"tokens":{"access_token":"x","account_id":"acct-2"},"last_refresh":"2027-01-15T08:00:00Z"}"#.utf8)
        #expect(await credential.reload() == .loaded(changed: true, accountChanged: false), "after an unload every load is fresh")
        store[path] = authJSON(lastRefresh: t0)
        #expect(await credential.reload() == .loaded(changed: true, accountChanged: true))
        store[path] = nil
        #expect(await credential.reload() == .unavailable(
            "credential file /creds/auth.json does not exist (yet); run `codex login` or copy an auth.json there"))
        #expect(await credential.availability != .available)
        #expect(await credential.auth == nil)
    }

    /// Scenario 5: a 9-day-old file is refreshed with one POST, written back 0600, and the new token used.
    @Test("Scenario 5: a 9-day-old file is refreshed with one POST, written back 0600, and the new token used") func refreshWritesBackAndUsesTheNewToken() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour, extra: #","auth_mode":"chatgpt""#)
        endpoint.enqueueTokens(access: "access-2", refresh: "refresh-2")
        let credential = source()
        let grant = try await credential.accessGrant()
        #expect(grant.token == Secret("access-2"))
        #expect(endpoint.requests.count == 1)
        let body = try JSONDecoder().decode([String: String].self, from: endpoint.requests[0])
        #expect(body["refresh_token"] == "refresh-1" && body["grant_type"] == "refresh_token")
        let written = try currentFile()
        #expect(written.tokens?.refreshToken == "refresh-2")
        #expect(written.lastRefresh == t0)
        #expect(written.document["auth_mode"] == .string("chatgpt"))
        #expect(store.permissions(of: path) == 0o600)
        #expect(try await credential.accessGrant().token == Secret("access-2"))
        #expect(endpoint.requests.count == 1, "fresh now: no second refresh")
    }

    /// Scenario 6: a file that cannot be written back is never refreshed.
    @Test("Scenario 6: a file that cannot be written back is never refreshed") func unwritableFileIsNotRefreshed() async {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        store.writable = false
        await #expect(throws: CredentialAccessError.refresh(.notWritable("the folder of \(path) does not accept a new file (read-only)"))) {
            try await source().accessGrant()
        }
        #expect(endpoint.requests.isEmpty)
    }

    /// The folder passed the check but the write failed (a full disk): the rotated token is kept in
    /// memory — the file's refresh token is already used up — reported, and saved on a retry.
    @Test func aRotatedTokenThatCannotBeSavedIsKeptReportedAndRetried() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        endpoint.enqueueTokens(access: "access-2", refresh: "refresh-2")
        store.failsWrites = true
        let credential = source()
        #expect(try await credential.accessGrant().token == Secret("access-2"))
        #expect(await credential.unsavedTokenSince == t0)
        #expect(await credential.lastPersistError?.contains("No space left on device") == true)
        #expect(try currentFile().tokens?.refreshToken == "refresh-1", "the file still has the old (used) token")

        // A reload does not bring the used-up token back, and no second refresh happens.
        await credential.reload()
        #expect(try await credential.accessGrant().token == Secret("access-2"))
        #expect(endpoint.requests.count == 1)

        // Within 30 s nothing is retried; after it, the write succeeds and the report clears.
        store.failsWrites = false
        clock.advance(10)
        _ = try await credential.accessGrant()
        #expect(try currentFile().tokens?.refreshToken == "refresh-1")
        clock.advance(LocalCredentialSource.unsavedRetryInterval)
        _ = try await credential.accessGrant()
        #expect(try currentFile().tokens?.refreshToken == "refresh-2")
        #expect(await credential.unsavedTokenSince == nil)
        #expect(await credential.lastPersistError == nil)
    }

    /// Scenario 7: the official CLI rewrote the file during our refresh: its tokens win, no write.
    @Test("Scenario 7: the official CLI rewrote the file during our refresh: its tokens win, no write") func concurrentExternalRefreshIsAdopted() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        endpoint.enqueueTokens(access: "ours", refresh: "ours-refresh")
        let theirs = authJSON(access: "theirs", refresh: "theirs-refresh", lastRefresh: t0)
        endpoint.duringNextRequest { [store, path] in store[path] = theirs }
        let grant = try await source().accessGrant()
        #expect(grant.token == Secret("theirs"))
        #expect(store.writeCount == 0)
        #expect(store[path] == theirs)
    }

    /// Tokens another process wrote before we start are used without any POST.
    @Test func freshTokensOnDiskAreAdoptedWithoutRefreshing() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        let credential = source()
        _ = await credential.reload()
        store[path] = authJSON(access: "cli-refreshed", refresh: "r9", lastRefresh: t0 - hour)
        #expect(try await credential.accessGrant().token == Secret("cli-refreshed"))
        #expect(endpoint.requests.isEmpty)
    }

    /// Scenario 8: a 429 with Retry-After blocks further POSTs for that long, even though each
    /// attempt re-reads the file (the reference lost the block on every reload).
    @Test("Scenario 8: a 429 with Retry-After blocks further POSTs for that long, even across reloads") func refreshRateLimitHonoursRetryAfter() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        endpoint.enqueue(.response(TokenEndpointResponse(status: 429, headers: [("Retry-After", "120")], body: Data())))
        let credential = source()
        await #expect(throws: CredentialAccessError.refresh(.rateLimited(retryAfter: 120))) { try await credential.accessGrant() }
        for _ in 0..<5 {
            clock.advance(20)
            await #expect(throws: CredentialAccessError.refresh(.rateLimited(retryAfter: 120))) { try await credential.accessGrant() }
        }
        #expect(endpoint.requests.count == 1)
        clock.advance(21)
        endpoint.enqueueTokens(access: "access-2", refresh: "refresh-2")
        #expect(try await credential.accessGrant().token == Secret("access-2"))
        #expect(endpoint.requests.count == 2)
    }

    /// Scenario 8, second half: without Retry-After, no POST until the file holds another refresh token.
    @Test("Scenario 8, second half: without Retry-After, no POST until the file holds another refresh token") func refreshRateLimitWithoutRetryAfterWaitsForTheFile() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        endpoint.enqueue(.response(TokenEndpointResponse(status: 429, body: Data())))
        let credential = source()
        await #expect(throws: CredentialAccessError.refresh(.rateLimited(retryAfter: nil))) { try await credential.accessGrant() }
        clock.advance(24 * hour)
        await #expect(throws: CredentialAccessError.refresh(.rateLimited(retryAfter: nil))) { try await credential.accessGrant() }
        #expect(endpoint.requests.count == 1)
        store[path] = authJSON(refresh: "refresh-new", lastRefresh: t0 - 30 * 24 * hour)
        endpoint.enqueueTokens(access: "access-3", refresh: "refresh-3")
        #expect(try await credential.accessGrant().token == Secret("access-3"))
        #expect(endpoint.requests.count == 2)
    }

    /// A dead refresh token makes the credential unavailable with an explanation, until the file changes.
    @Test func terminalRefreshFailure() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        endpoint.enqueue(.response(TokenEndpointResponse(status: 401, body: Data(#"{"error":{"code":"refresh_token_reused"}}"#.utf8))))
        let credential = source()
        await #expect(throws: CredentialAccessError.refresh(.terminal(code: "refresh_token_reused"))) { try await credential.accessGrant() }
        guard case .unavailable(let reason) = await credential.availability else {
            Issue.record("expected the credential to be unavailable")
            return
        }
        #expect(reason.message.contains("Run `codex login`"))
        clock.advance(10)
        _ = await credential.reloadIfDue()
        await #expect(throws: CredentialAccessError.refresh(.terminal(code: "refresh_token_reused"))) { try await credential.accessGrant() }
        #expect(endpoint.requests.count == 1)
        store[path] = authJSON(access: "relogged", refresh: "new", lastRefresh: t0)
        clock.advance(2)
        #expect(try await credential.accessGrant().token == Secret("relogged"))
        #expect(await credential.availability == .available)
    }

    /// At most one refresh is in flight per account, however many requests need one.
    @Test func concurrentCallersShareOneRefresh() async throws {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        endpoint.enqueueTokens(access: "access-2", refresh: "refresh-2")
        let credential = source()
        let tokens = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<20 { group.addTask { try? await credential.accessGrant().token.value } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(tokens == Array(repeating: "access-2", count: 20))
        #expect(endpoint.requests.count == 1)
    }

    /// After a 401, the rejected token is refreshed even though it looks fresh — unless the file
    /// already holds another one.
    @Test func unauthorizedTriggersARefresh() async throws {
        store[path] = authJSON(lastRefresh: t0)
        let credential = source()
        endpoint.enqueueTokens(access: "access-2", refresh: "refresh-2")
        #expect(try await credential.accessGrant(rejectedAccessToken: Secret("access-1")).token == Secret("access-2"))
        #expect(endpoint.requests.count == 1)
        store[path] = authJSON(access: "from-cli", refresh: "r", lastRefresh: t0)
        #expect(try await credential.accessGrant(rejectedAccessToken: Secret("access-2")).token == Secret("from-cli"))
        #expect(endpoint.requests.count == 1)
    }

    @Test func transportFailuresAreRetriedThenReported() async {
        store[path] = authJSON(lastRefresh: t0 - 9 * 24 * hour)
        let credential = source()
        await #expect(throws: CredentialAccessError.self) { try await credential.accessGrant() }
        #expect(endpoint.requests.count == 3)
        #expect(await credential.availability == .available, "a network failure does not make the file unavailable")
    }

    @Test func apiKeyFilesNeedNoRefresh() async throws {
        store[path] = Data(#"{"OPENAI_API_KEY":"sk-1"}"#.utf8)
        let grant = try await source().accessGrant()
        #expect(grant == AccessGrant(token: Secret("sk-1"), accountID: nil, isAPIKey: true))
    }
}
