import Foundation
import Logging
import NIOHTTP1
import PoolCore
import Storage
import Synchronization

/// Per-user limits (`users[].limits`): checked before a credential is chosen, for HTTP requests,
/// WebSocket connections and each WebSocket turn.
extension GatewayRuntime {
    func limits(of user: AuthenticatedUser) -> UserLimits {
        generation.withLock { $0.userLimits[user.name] } ?? UserLimits()
    }

    /// Admits work for `user` or refuses it (logged, counted in `codexpool_refusals_total`).
    /// Everyone is admitted on an instance without users.
    func admit(_ user: AuthenticatedUser, sessionKey: String?, countsRequest: Bool, logger: Logger? = nil) -> Result<SessionHold?, UserLimitRefusal> {
        guard !user.name.isEmpty else { return .success(nil) }
        let now = clock.now()
        let result = userLimits.admit(user.name, limits: limits(of: user), sessionKey: sessionKey, countsRequest: countsRequest, now: now)
        if case .failure(let refusal) = result {
            metrics.recordRefusal(.userLimit)
            (logger ?? self.logger).info("refused: \(refusal.message(now: now))")
        }
        return result
    }

    /// The ledger's last weeks from the store, so limits count what was used before a restart.
    func restoreUserLedger() async {
        guard let history else { return }
        let firstDay = CalendarWindow.dayNumber(clock.now()) - UserUsageLedger.daysKept
        let entries: [UsageLedgerEntry] = await withCheckedContinuation { continuation in
            history.recorder.read({ try $0.ledger(fromDay: firstDay) }) { result in
                continuation.resume(returning: (try? result.get()) ?? [])
            }
        }
        userLimits.seed(entries.map { ($0.user, $0.day, $0.use) })
    }

    /// A refusal as an HTTP answer: 429 in the shape Codex reads for a usage limit (it stops and
    /// shows when to try again), naming the limit and the use; `Retry-After` when it resets.
    func userLimitResponse(_ refusal: UserLimitRefusal) -> GatewayResponse {
        let now = clock.now()
        let response = GatewayResponse.json(.tooManyRequests, .object(["error": Self.userLimitError(refusal, now: now)]))
        guard let reset = refusal.resetsAt else { return response }
        return response.retrying(after: max(1, Int(reset.timeIntervalSince(now).rounded(.up))))
    }

    /// A refusal as a WebSocket `error` event (codex-client.md §3.5), for a turn on an open socket.
    func userLimitEvent(_ refusal: UserLimitRefusal) -> JSONValue {
        .object(["type": .string("error"), "status_code": .integer(429), "error": Self.userLimitError(refusal, now: clock.now())])
    }

    private static func userLimitError(_ refusal: UserLimitRefusal, now: Date) -> JSONValue {
        var error: [String: JSONValue] = [
            "type": .string(refusal.limit == .concurrentSessions ? "rate_limit_exceeded" : "usage_limit_reached"),
            "code": .string("user_limit_reached"),
            "message": .string(refusal.message(now: now)),
            "limit": .string(refusal.limitName),
            "limit_value": .number(refusal.value),
            "used": .number((refusal.used * 100).rounded() / 100),
        ]
        if let reset = refusal.resetsAt {
            error["resets_at"] = .integer(Int64(reset.timeIntervalSince1970))
            error["resets_in_seconds"] = .integer(Int64(max(0, reset.timeIntervalSince(now).rounded(.up))))
        }
        return .object(error)
    }
}
