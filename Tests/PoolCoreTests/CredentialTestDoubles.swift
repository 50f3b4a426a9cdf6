import Foundation
import PoolCore
import Synchronization

/// A clock the test moves by hand.
final class ManualClock: PoolClock, Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = t0) {
        current = Mutex(start)
    }

    func now() -> Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 += seconds } }
}

/// Files in memory; `writable` decides what `isWritable` answers.
final class MemoryFileStore: CredentialFileStore, Sendable {
    private struct State {
        var files: [String: Data] = [:]
        var writable = true
        /// Writes fail (a full disk) while the folder check still passes.
        var failsWrites = false
        var writes = 0
        var permissions: [String: UInt16] = [:]
    }

    private let state = Mutex(State())

    subscript(path: String) -> Data? {
        get { state.withLock { $0.files[path] } }
        set { state.withLock { $0.files[path] = newValue } }
    }

    var writable: Bool {
        get { state.withLock { $0.writable } }
        set { state.withLock { $0.writable = newValue } }
    }

    var failsWrites: Bool {
        get { state.withLock { $0.failsWrites } }
        set { state.withLock { $0.failsWrites = newValue } }
    }

    struct FileWriteFailure: Error, CustomStringConvertible {
        var description: String { "No space left on device" }
    }

    var writeCount: Int { state.withLock { $0.writes } }
    func permissions(of path: String) -> UInt16? { state.withLock { $0.permissions[path] } }

    func read(_ path: String) throws -> Data? { self[path] }
    func replacementProblem(_ path: String) -> String? {
        guard self[path] != nil else { return "\(path) does not exist" }
        return writable ? nil : "the folder of \(path) does not accept a new file (read-only)"
    }

    func writeAtomically(_ data: Data, to path: String, permissions: UInt16) throws {
        try state.withLock {
            if $0.failsWrites { throw FileWriteFailure() }
            $0.files[path] = data
            $0.writes += 1
            $0.permissions[path] = permissions
        }
    }
}

/// A token endpoint that answers from a script and records every request body.
final class ScriptedTokenEndpoint: TokenRefresher, Sendable {
    enum Answer: Sendable {
        case response(TokenEndpointResponse)
        case transportFailure
    }

    private struct State {
        var answers: [Answer] = []
        var requests: [Data] = []
        var gate: CheckedContinuation<Void, Never>?
        var holdNext = false
        var onRequest: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    var requests: [Data] { state.withLock { $0.requests } }

    func enqueue(_ answer: Answer) { state.withLock { $0.answers.append(answer) } }

    func enqueueTokens(access: String, refresh: String, id: String? = nil) {
        var object = ["access_token": access, "refresh_token": refresh, "token_type": "Bearer"]
        object["id_token"] = id
        enqueue(.response(TokenEndpointResponse(status: 200, body: try! JSONEncoder().encode(object))))
    }

    /// Runs `action` while the next request is in flight (before it is answered).
    func duringNextRequest(_ action: @escaping @Sendable () -> Void) { state.withLock { $0.onRequest = action } }

    func postTokenRequest(body: Data) async throws -> TokenEndpointResponse {
        let (answer, hook): (Answer?, (@Sendable () -> Void)?) = state.withLock {
            $0.requests.append(body)
            let hook = $0.onRequest
            $0.onRequest = nil
            return ($0.answers.isEmpty ? nil : $0.answers.removeFirst(), hook)
        }
        hook?()
        await Task.yield()
        switch answer {
        case .response(let response): return response
        case .transportFailure, nil: throw URLError(.cannotConnectToHost)
        }
    }
}

/// Builds an unsigned JWT with the given claims (what the OAuth endpoint issues, unverified here).
func jwt(_ claims: [String: Any]) -> String {
    func encode(_ object: Any) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
    return encode(["alg": "none", "typ": "JWT"]) + "." + encode(claims) + ".sig"
}

func authJSON(access: String = "access-1", refresh: String = "refresh-1", lastRefresh: Date?, extra: String = "") -> Data {
    let refreshed = lastRefresh.map { #","last_refresh":"\#(ISO8601DateFormatter().string(from: $0))""# } ?? ""
    return Data(#"{"tokens":{"access_token":"\#(access)","refresh_token":"\#(refresh)","account_id":"acct-1"}\#(refreshed)\#(extra)}"#.utf8)
}
