import Foundation
import Synchronization

/// Continuation state as the backend scopes it (codex-wire-2026.md §1): turn-state tokens,
/// response ids and encrypted items belong to the account that issued them, and another account
/// refuses them.
extension UpstreamSimulator {
    /// Why the backend refuses a request carrying another account's continuation state: its
    /// turn-state token, a response it made, or its encrypted items (the `error` object); nil
    /// when there is none.
    func continuationProblem(_ request: [String: Any], turnStateHeader: String?, accountID: String, checksPreviousResponse: Bool)
        -> [String: Any]? {
        let turnState = turnStateHeader ?? (request["client_metadata"] as? [String: Any])?["x-codex-turn-state"] as? String
        return state.withLock { state in
            if let turnState, let owner = state.turnStateOwners[turnState], owner != accountID {
                state.refusedContinuations += 1
                return ["type": "invalid_request_error", "code": "invalid_turn_state", "param": "x-codex-turn-state",
                        "message": "The turn state was issued for another account."]
            }
            if checksPreviousResponse, let previous = request["previous_response_id"] as? String, state.responseOwners[previous] != accountID {
                state.refusedContinuations += 1
                return ["type": "invalid_request_error", "code": "previous_response_not_found", "param": "previous_response_id",
                        "message": "Previous response with id '\(previous)' not found."]
            }
            for item in request["input"] as? [[String: Any]] ?? [] {
                guard let content = item["encrypted_content"] as? String, SimulatedTurn.account(ofEncryptedContent: content) != accountID else { continue }
                state.refusedContinuations += 1
                return ["type": "invalid_request_error", "code": "invalid_encrypted_content", "param": "input",
                        "message": "The encrypted content for item \(item["id"] as? String ?? "?") could not be verified."]
            }
            return nil
        }
    }

    /// The turn-state of an answer: the request's own when this account issued it, else a new one.
    func turnState(for request: [String: Any], turnStateHeader: String?, accountID: String) -> String {
        let presented = turnStateHeader ?? (request["client_metadata"] as? [String: Any])?["x-codex-turn-state"] as? String
        return state.withLock { state in
            if let presented, state.turnStateOwners[presented] == accountID { return presented }
            state.responseCounter += 1
            let issued = "ts_\(accountID)_\(state.responseCounter)"
            state.turnStateOwners[issued] = accountID
            return issued
        }
    }

    func recordResponse(_ responseID: String, of accountID: String) {
        state.withLock { $0.responseOwners[responseID] = accountID }
    }

    /// Requests refused for carrying another account's state, so far.
    public var refusedContinuations: Int { state.withLock { $0.refusedContinuations } }

    /// The command to ask for: the account's tool command, unless the request brings its output.
    /// Runs the test's tool-call action first (before the answer leaves).
    func toolCall(for request: [String: Any], account: SimulatedAccount, sessionID: String?) -> String? {
        guard let command = account.toolCommand, (request["generate"] as? Bool) != false else { return nil }
        let last = (request["input"] as? [[String: Any]])?.last?["type"] as? String
        guard last != "function_call_output" else { return nil }
        toolCallAction.withLock { $0 }?(account.accountID, sessionID)
        return command
    }

    /// Runs `action` whenever an account asks for a tool call, before that answer is sent — the
    /// moment between a tool call and its follow-up, for tests that change the pool there.
    public func whenToolCalled(_ action: @escaping @Sendable (_ accountID: String, _ sessionID: String?) -> Void) {
        toolCallAction.withLock { $0 = action }
    }
}
