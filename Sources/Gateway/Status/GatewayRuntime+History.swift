import Foundation
import Logging
import NIOCore
import PoolCore
import Storage
import Synchronization

/// Finished requests reach the metrics and the history from here; admin changes are persisted.
extension GatewayRuntime {
    func recordFinished(_ finished: FinishedRequest) {
        metrics.recordResponse(finished.transport, outcome: finished.outcome, credential: finished.credential, user: finished.user.name,
                               timeToFirstByte: finished.timeToFirstByte, duration: finished.duration)
        let counted = finished.countsTowardLimits && !finished.user.name.isEmpty
        // No history, nobody watching, no ledger: no row to build (this runs for every request).
        guard history != nil || requestFeed.hasSubscribers || counted else { return }
        let now = clock.now()
        let cost = finished.usage.map { Self.cost(of: $0, model: finished.model) } ?? 0
        let row = RequestHistory.row(finished, costUSD: cost, time: now)
        var ledger: UsageLedgerEntry?
        if counted {
            let tokens = (finished.usage?.inputTokens ?? 0) + (finished.usage?.outputTokens ?? 0)
            userLimits.record(UserUse(tokens: tokens, costUSD: cost), user: finished.user.name, at: now)
            ledger = UsageLedgerEntry(user: finished.user.name, day: CalendarWindow.dayNumber(now), use: UserUse(requests: 1, tokens: tokens, costUSD: cost))
        }
        history?.record(row, finished: finished, ledger: ledger)
        requestFeed.publish(row)
    }

    /// What the answer cost at list prices (the pricing table), unrounded.
    static func cost(of usage: CompletedUsage, model fallback: String?) -> Double {
        guard let model = usage.model ?? fallback else { return 0 }
        return PricingTable.bundled.listCost(model: model, serviceTier: usage.serviceTier, inputTokens: usage.inputTokens,
                                             cachedTokens: usage.cachedTokens, outputTokens: usage.outputTokens)
    }

    /// Credentials an operator disabled stay disabled across restarts.
    func restoreAdminState() async {
        guard let history else { return }
        let disabled: Set<String> = await withCheckedContinuation { continuation in
            history.recorder.read({ try $0.disabledCredentials() }) { result in
                continuation.resume(returning: (try? result.get()) ?? [])
            }
        }
        let now = clock.now()
        for tag in disabled {
            let events = pool.withLock { $0.setDisabledByAdmin(tag, true, now: now) }
            apply(events)
            logger.info("credential \(tag) stays disabled by admin")
        }
    }

    /// Disables or enables a credential (admin API) and persists it; the future fails when the
    /// change could not be saved (it is not applied then either).
    func setDisabledByAdmin(_ tag: String, _ disabled: Bool, by user: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let apply: @Sendable () -> Void = { [self] in
            let events = pool.withLock { $0.setDisabledByAdmin(tag, disabled, now: clock.now()) }
            self.apply(events)
            logger.notice("credential \(tag) \(disabled ? "disabled" : "enabled") by admin \(user)")
        }
        guard let history else {
            apply()
            promise.succeed()
            return promise.futureResult
        }
        let now = clock.now()
        history.recorder.write({ try $0.setCredential(tag, disabled: disabled, at: now) }) { result in
            switch result {
            case .success:
                apply()
                promise.succeed()
            case .failure(let error):
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}
