import Foundation
import NIOHTTP1
import PoolCore
import Synchronization

/// Turns stay on the account that started them (codex-wire-2026.md §1): the state upstream
/// issues is remembered with its credential, and requests that carry it are placed accordingly.
extension GatewayRuntime {
    /// Remembers that `tag` issued these values (turn-state, response ids, encrypted items).
    func recordIssued(_ values: [(ContinuationBindings.Kind, String)], tag: String) {
        guard !values.isEmpty else { return }
        let now = clock.now()
        pool.withLock { $0.bindContinuations(values, to: tag, now: now) }
    }

    /// Where a request carrying `state` must go for `user`, and whether the state is a previous
    /// response (which only its own account can continue) rather than just a turn's token.
    func continuationTarget(_ state: RequestContinuation, for user: AuthenticatedUser) -> (ContinuationTarget, continuesResponse: Bool) {
        guard state.turnState != nil || state.previousResponseID != nil else { return (.unbound, false) }
        let now = clock.now()
        return pool.withLock { pool in
            let byResponse = state.previousResponseID.flatMap { pool.continuationCredential(.responseID, $0, now: now) }
            let bound = byResponse ?? state.turnState.flatMap { pool.continuationCredential(.turnState, $0, now: now) }
            return (pool.continuationTarget(boundTag: bound, provider: user.provider, scope: user.scope, now: now), byResponse != nil)
        }
    }

    /// The parts of `state` another credential than `destination` issued.
    func foreignState(_ state: RequestContinuation, destination: String) -> RequestContinuation.Foreign {
        guard !state.isEmpty else { return RequestContinuation.Foreign() }
        let now = clock.now()
        return pool.withLock { pool in
            func foreign(_ kind: ContinuationBindings.Kind, _ value: String?) -> Bool {
                guard let value, let issuer = pool.continuationCredential(kind, value, now: now) else { return false }
                return issuer != destination
            }
            return RequestContinuation.Foreign(
                turnState: foreign(.turnState, state.turnState), previousResponse: foreign(.responseID, state.previousResponseID),
                encryptedFingerprints: Set(state.encryptedFingerprints.filter { foreign(.encryptedContent, $0) }))
        }
    }

    /// Whether the user's pool has a usable credential besides `tag`.
    func hasOtherCredential(for user: AuthenticatedUser, than tag: String) -> Bool {
        let now = clock.now()
        return pool.withLock { $0.hasUsableCredential(provider: user.provider, scope: user.scope, otherThan: tag, now: now) }
    }

    /// Puts `sessionID` back on `tag` for the rest of a turn that reconnected elsewhere.
    func holdSession(_ sessionID: String?, of user: AuthenticatedUser, on tag: String) {
        guard let sessionID else { return }
        let now = clock.now()
        pool.withLock { $0.holdSession(provider: user.provider, scope: user.scope, sessionID: sessionID, on: tag, now: now) }
    }
}

extension GatewayResponse {
    /// What the backend answers for a response it does not have (codex-wire-2026.md §1
    /// "Recoveries"): Codex then sends the whole input again, without `previous_response_id`.
    static func previousResponseNotFound(_ id: String) -> GatewayResponse {
        .error(.badRequest, type: "invalid_request_error", code: "previous_response_not_found",
               message: "Previous response with id '\(id)' not found.")
    }
}
