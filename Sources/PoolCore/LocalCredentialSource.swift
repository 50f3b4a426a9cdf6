public import Foundation

/// What a caller needs to authenticate one upstream request.
public struct AccessGrant: Hashable, Sendable {
    /// The OAuth access token or the API key.
    public let token: Secret
    /// Sent as `ChatGPT-Account-Id` when known.
    public var accountID: String?
    public var isAPIKey: Bool
    /// `Bearer <token>`, made once per grant rather than once per request that uses it.
    public let authorization: Secret

    public init(token: Secret, accountID: String?, isAPIKey: Bool) {
        self.token = token
        self.accountID = accountID
        self.isAPIKey = isAPIKey
        authorization = Secret("Bearer \(token.value)")
    }
}

/// Why no token could be produced.
public enum CredentialAccessError: Error, Hashable, Sendable, CustomStringConvertible {
    case unavailable(String)
    case refresh(TokenRefreshError)

    public var description: String {
        switch self {
        case .unavailable(let message): message
        case .refresh(let error): error.description
        }
    }
}

/// One local Codex credential file and its token lifecycle (§2.4–2.6).
///
/// The file may be missing at start and appear later, change under us (the official Codex CLI
/// refreshes it too), turn invalid or vanish; availability follows it. Token refresh happens at
/// most once at a time, adopts tokens another process wrote meanwhile, refuses when the file
/// cannot be written back, and after a 429 or a dead refresh token waits — for the Retry-After,
/// or until the file holds a different refresh token.
public actor LocalCredentialSource {
    public let tag: String
    public let path: String
    private let store: any CredentialFileStore
    private let refresher: any TokenRefresher
    private let clock: any PoolClock
    /// Delays before the second and third attempt when the token endpoint cannot be reached.
    private let transportRetryDelays: [Duration]

    public private(set) var auth: CodexAuthFile?
    public private(set) var availability: Availability
    /// The last problem writing a refreshed token back, for the operator's logs.
    public private(set) var lastPersistError: String?
    /// A rotated token that is only in memory because writing it back failed: kept (the file's
    /// token is already used up), retried, and reported until a write succeeds.
    private var unsaved: (data: Data, since: Date, lastAttempt: Date)?
    /// Since when the credential's current tokens exist in memory only; nil when they are on disk.
    public var unsavedTokenSince: Date? { unsaved?.since }

    private var loadedBytes: Data?
    private var lastLoadAttempt: Date?
    private var refreshBlock: RefreshBlock?
    private var refreshTask: Task<Result<CodexAuthFile, TokenRefreshError>, Never>?

    struct RefreshBlock {
        var error: TokenRefreshError
        /// The refresh token that failed; a file with another one lifts the block.
        var refreshToken: String?
        /// nil: until the file changes.
        var until: Date?

        func applies(to auth: CodexAuthFile, now: Date) -> Bool {
            auth.tokens?.refreshToken == refreshToken && (until.map { now < $0 } ?? true)
        }
    }

    public init(tag: String, path: String, store: any CredentialFileStore, refresher: any TokenRefresher, clock: any PoolClock,
                transportRetryDelays: [Duration] = [.milliseconds(200), .milliseconds(400)]) {
        self.tag = tag
        self.path = path
        self.store = store
        self.refresher = refresher
        self.clock = clock
        self.transportRetryDelays = transportRetryDelays
        availability = .unavailable(UnavailableReason("credential file \(path) not loaded yet"))
    }

    // MARK: Loading

    /// What a (re)load found.
    public enum LoadOutcome: Hashable, Sendable {
        /// The file is loaded; `accountChanged` when it now holds another account (forget its usage).
        case loaded(changed: Bool, accountChanged: Bool)
        case unavailable(String)
    }

    /// Reads the file now (a watcher saw it change, or a refresh needs the latest tokens).
    @discardableResult
    public func reload() -> LoadOutcome {
        lastLoadAttempt = clock.now()
        let data: Data?
        do {
            data = try store.read(path)
        } catch {
            return markUnavailable("credential file \(path) cannot be read: \(error)")
        }
        guard let data else {
            return markUnavailable("credential file \(path) does not exist (yet); run `codex login` or copy an auth.json there")
        }
        if data == loadedBytes, auth != nil { return .loaded(changed: false, accountChanged: false) }
        // Another writer replaced the file since our rotation failed to save: theirs is newer.
        if unsaved != nil {
            unsaved = nil
            lastPersistError = nil
        }
        let parsed: CodexAuthFile
        do {
            parsed = try CodexAuthFile(data: data)
        } catch {
            return markUnavailable("credential file \(path) \(error)")
        }
        let accountChanged = auth != nil && (auth?.accountID != parsed.accountID || auth?.isAPIKeyMode != parsed.isAPIKeyMode)
        auth = parsed
        loadedBytes = data
        if let block = refreshBlock, !block.applies(to: parsed, now: clock.now()) { refreshBlock = nil }
        if case .terminal = refreshBlock?.error {
            availability = .unavailable(UnavailableReason(refreshBlock!.error.description))
        } else {
            availability = .available
        }
        return .loaded(changed: true, accountChanged: accountChanged)
    }

    /// Reloads while unavailable, at most every two seconds; nil when it was not due.
    public func reloadIfDue() -> LoadOutcome? {
        guard case .unavailable = availability else { return nil }
        if let last = lastLoadAttempt, clock.now().timeIntervalSince(last) < PoolPolicy.credentialReloadInterval { return nil }
        return reload()
    }

    private func markUnavailable(_ message: String) -> LoadOutcome {
        auth = nil
        loadedBytes = nil
        availability = .unavailable(UnavailableReason(message))
        return .unavailable(message)
    }

    // MARK: Tokens

    /// A token for one upstream request, refreshing first when needed.
    ///
    /// - Parameter rejectedAccessToken: the token upstream just answered 401 to; it is
    ///   refreshed even if it looks fresh, unless the file already holds another one.
    public func accessGrant(rejectedAccessToken: Secret? = nil) async throws(CredentialAccessError) -> AccessGrant {
        retryUnsavedWrite()
        _ = reloadIfDue()
        guard let current = auth else { throw .unavailable(unavailableMessage) }
        if current.isAPIKeyMode { return grant(current) }
        guard needsRefresh(current, rejected: rejectedAccessToken) else { return grant(current) }

        // Another process (the official CLI) may have refreshed already.
        reload()
        guard let latest = auth else { throw .unavailable(unavailableMessage) }
        guard needsRefresh(latest, rejected: rejectedAccessToken) else { return grant(latest) }

        if let block = refreshBlock, block.applies(to: latest, now: clock.now()) { throw .refresh(block.error) }
        let task: Task<Result<CodexAuthFile, TokenRefreshError>, Never>
        if let running = refreshTask {
            task = running
        } else {
            let snapshot = latest
            let snapshotBytes = loadedBytes
            task = Task { await self.performRefresh(from: snapshot, bytes: snapshotBytes) }
            refreshTask = task
        }
        let result = await task.value
        if refreshTask == task { refreshTask = nil }
        switch result {
        case .success(let refreshed): return grant(refreshed)
        case .failure(let error): throw .refresh(error)
        }
    }

    private var unavailableMessage: String {
        if case .unavailable(let reason) = availability { return "credential \(tag) is unavailable: \(reason.message)" }
        return "credential \(tag) is unavailable"
    }

    private func needsRefresh(_ auth: CodexAuthFile, rejected: Secret?) -> Bool {
        if let rejected, auth.tokens?.accessToken == rejected.value, auth.tokens?.refreshToken != nil { return true }
        return auth.needsRefresh(now: clock.now())
    }

    private func grant(_ auth: CodexAuthFile) -> AccessGrant {
        if let key = auth.apiKey { return AccessGrant(token: Secret(key), accountID: nil, isAPIKey: true) }
        return AccessGrant(token: Secret(auth.tokens?.accessToken ?? ""), accountID: auth.accountID, isAPIKey: false)
    }

    /// The refresh itself; runs as the single in-flight task.
    private func performRefresh(from snapshot: CodexAuthFile, bytes snapshotBytes: Data?) async -> Result<CodexAuthFile, TokenRefreshError> {
        guard let refreshToken = snapshot.tokens?.refreshToken else { return .failure(.rejected(status: 0, detail: "no refresh token")) }
        if let problem = store.replacementProblem(path) { return .failure(.notWritable(problem)) }

        let outcome = await postWithTransportRetries(TokenRefresh.requestBody(refreshToken: refreshToken))
        let now = clock.now()
        switch outcome {
        case .failure(let error):
            switch error {
            case .rateLimited(let retryAfter):
                refreshBlock = RefreshBlock(error: error, refreshToken: refreshToken, until: retryAfter.map { now.addingTimeInterval($0) })
            case .terminal:
                refreshBlock = RefreshBlock(error: error, refreshToken: refreshToken, until: nil)
                availability = .unavailable(UnavailableReason(error.description))
            default:
                break
            }
            return .failure(error)
        case .success(let response):
            // Someone else may have written the file while we waited; their write wins.
            if let onDisk = try? store.read(path), onDisk != snapshotBytes, let theirs = try? CodexAuthFile(data: onDisk) {
                auth = theirs
                loadedBytes = onDisk
                availability = .available
                return theirs.needsRefresh(now: now) ? .failure(.changedWhileRefreshing) : .success(theirs)
            }
            var updated = snapshot
            updated.applyRefresh(response, now: now)
            let data = updated.serialized()
            auth = updated
            persist(data, now: now)
            refreshBlock = nil
            availability = .available
            return .success(updated)
        }
    }

    /// Writes refreshed tokens back; on failure keeps them in memory to try again later.
    private func persist(_ data: Data, now: Date) {
        do {
            try store.writeAtomically(data, to: path, permissions: 0o600)
            lastPersistError = nil
            loadedBytes = data
            unsaved = nil
        } catch {
            // The new token works now, and the file's is already used up: keep ours, say so, retry.
            lastPersistError = "persist refreshed token for \(tag) to \(path): \(error)"
            unsaved = (data, unsaved?.since ?? now, now)
        }
    }

    /// How often a rotated token that could not be saved is written again.
    public static let unsavedRetryInterval: TimeInterval = 30

    /// Tries again to save a rotated token that only lives in memory (at most every 30 s).
    public func retryUnsavedWrite() {
        guard let pending = unsaved, clock.now().timeIntervalSince(pending.lastAttempt) >= Self.unsavedRetryInterval else { return }
        persist(pending.data, now: clock.now())
    }

    private func postWithTransportRetries(_ body: Data) async -> Result<TokenRefreshResponse, TokenRefreshError> {
        var attempt = 0
        while true {
            do {
                let response = try await refresher.postTokenRequest(body: body)
                return TokenRefresh.interpret(response)
            } catch {
                guard attempt < transportRetryDelays.count, !Task.isCancelled else { return .failure(.transport("\(error)")) }
                try? await Task.sleep(for: transportRetryDelays[attempt])
                attempt += 1
            }
        }
    }
}
