import Foundation
import PoolCore
import Synchronization

/// Per-user limits as the gateway keeps them: every named user's use per UTC day (seeded from
/// the store's ledger at start, so limits survive restarts) and the sessions each has open.
/// Checked before a credential is chosen; thread-safe, one short lock per admission.
final class UserLimitBook: Sendable {
    private let state = Mutex<(ledger: UserUsageLedger, sessions: OpenSessions)>((UserUsageLedger(), OpenSessions()))

    /// Admits a request, a WebSocket turn or a WebSocket connection for `user`, or says which
    /// limit stands in the way.
    /// - Parameters:
    ///   - sessionKey: the session it belongs to, for `max_concurrent_sessions`; nil for a turn on
    ///     a WebSocket that holds its session already.
    ///   - countsRequest: a request or turn (counted now, so that parallel ones cannot overshoot);
    ///     false for the WebSocket connection itself.
    /// - Returns: the session hold to release when the work ends, if one was taken.
    func admit(_ user: String, limits: UserLimits, sessionKey: String?, countsRequest: Bool, now: Date) -> Result<SessionHold?, UserLimitRefusal> {
        state.withLock { state -> Result<SessionHold?, UserLimitRefusal> in
            if let refusal = state.ledger.refusal(user, limits: limits, now: now) { return .failure(refusal) }
            var hold: SessionHold?
            if let sessionKey {
                guard state.sessions.open(sessionKey, user: user, maximum: limits.maxConcurrentSessions) else {
                    let maximum = Double(limits.maxConcurrentSessions ?? 0)
                    return .failure(UserLimitRefusal(user: user, limit: .concurrentSessions, value: maximum, used: Double(state.sessions.count(user)), resetsAt: nil))
                }
                hold = SessionHold(book: self, user: user, key: sessionKey)
            }
            if countsRequest { state.ledger.add(UserUse(requests: 1), user: user, at: now) }
            return .success(hold)
        }
    }

    /// What a finished request or turn used (its request was counted when it was admitted).
    func record(_ use: UserUse, user: String, at time: Date) {
        state.withLock { $0.ledger.add(use, user: user, at: time) }
    }

    func seed(_ entries: [(user: String, day: Int, use: UserUse)]) {
        state.withLock { state in
            for entry in entries { state.ledger.seed(user: entry.user, day: entry.day, use: entry.use) }
        }
    }

    /// The user's use in each window and open sessions now.
    func standing(_ user: String, now: Date) -> (day: UserUse, week: UserUse, month: UserUse, sessions: Int) {
        state.withLock { state in
            (state.ledger.use(user, in: .day, now: now), state.ledger.use(user, in: .week, now: now), state.ledger.use(user, in: .month, now: now),
             state.sessions.count(user))
        }
    }

    fileprivate func release(_ user: String, key: String) {
        state.withLock { $0.sessions.close(key, user: user) }
    }
}

/// One open use of a session, counted against `max_concurrent_sessions` until released.
final class SessionHold: Sendable {
    private let book: UserLimitBook
    private let user: String
    private let key: String
    private let released = Atomic(false)

    fileprivate init(book: UserLimitBook, user: String, key: String) {
        self.book = book
        self.user = user
        self.key = key
    }

    /// Ends the hold; later calls do nothing.
    func release() {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        book.release(user, key: key)
    }
}
