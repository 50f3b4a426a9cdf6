import Foundation
import PoolCore

/// What to do after upstream refused a request or a WebSocket upgrade with a 429.
enum RetryDecision {
    case retry(Selection)
    /// Nothing left to try: send this to the client.
    case answer(GatewayResponse)
}

extension GatewayRuntime {
    /// Requests and upgrades stop failing over after this many tries.
    static let maximumAttempts = 8

    /// After a 429 from `failedTag`: the next credential for the session (§4.4), or the client's
    /// answer when there is none or too many were tried (§7.6).
    func afterRateLimit(for user: AuthenticatedUser, sessionID: String?, failedTag: String, rejection: RateLimitRejection,
                        attemptsSoFar: Int) -> RetryDecision {
        metrics.recordRateLimited(credential: failedTag)
        guard attemptsSoFar < Self.maximumAttempts else {
            recordRateLimited(failedTag, rejection: rejection)
            return .answer(.credentialUnavailable(currentFailure(for: user), fallback: "credential \(failedTag) is rate-limited"))
        }
        switch failover(for: user, sessionID: sessionID, failedTag: failedTag, rejection: rejection) {
        case .success(let next): return .retry(next)
        case .failure(let failure): return .answer(.credentialUnavailable(failure, fallback: "all credentials rate-limited"))
        }
    }

    /// A peer instance answered 400 (§5.6): it rests for an hour, and the client learns why.
    func peerRejected(_ tag: String, for user: AuthenticatedUser) -> GatewayResponse {
        recordUpstreamRejected(tag)
        return .credentialUnavailable(currentFailure(for: user), fallback: "upstream rejected credential \(tag)")
    }

    /// "assigned credential T[ for session S][ by user U][, model=M][, think=E][, fast]" (§7.3 step 7).
    static func assignmentLine(tag: String, sessionID: String?, user: AuthenticatedUser, request: ResponsesRequestSummary?) -> String {
        var line = "assigned credential \(tag)"
        if let sessionID { line += " for session \(sessionID)" }
        if !user.name.isEmpty { line += " by user \(user.name)" }
        if let model = request?.model { line += ", model=\(model)" }
        if let effort = request?.reasoningEffort { line += ", think=\(effort)" }
        if request?.serviceTier == "priority" { line += ", fast" }
        return line
    }
}
