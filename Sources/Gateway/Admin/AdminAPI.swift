import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Storage
import Synchronization

/// `/api/v1/…` (DESIGN.md "State, history and the admin surface"): history and pool state as
/// JSON for the dashboard and scripts. Every user sees their own requests and usage and the
/// pool's status; admins see everyone's and may enable and disable credentials. Reads of the
/// history run off the event loop; the answer comes back on it.
enum AdminAPI {
    static func answer(method: HTTPMethod, path: String, query: String, user: AuthenticatedUser, runtime: GatewayRuntime,
                       eventLoop: any EventLoop) -> EventLoopFuture<GatewayResponse> {
        let query = AdminQuery(query)
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3, parts[0] == "credentials", parts[2] == "disable" || parts[2] == "enable" {
            guard method == .POST else { return eventLoop.makeSucceededFuture(.methodNotAllowed) }
            return setEnabled(parts[1], parts[2] == "enable", user: user, runtime: runtime, eventLoop: eventLoop)
        }
        if parts == ["reload"] {
            guard method == .POST else { return eventLoop.makeSucceededFuture(.methodNotAllowed) }
            return reload(user: user, runtime: runtime, eventLoop: eventLoop)
        }
        guard parts.count == 1 else { return eventLoop.makeSucceededFuture(.notFound) }
        let resource = parts[0]
        guard ["credentials", "overview", "requests", "usage", "usage.csv", "series"].contains(resource) else {
            return eventLoop.makeSucceededFuture(.notFound)
        }
        guard method == .GET else { return eventLoop.makeSucceededFuture(.methodNotAllowed) }
        switch resource {
        case "credentials":
            return eventLoop.makeSucceededFuture(.json(.ok, credentials(for: user, runtime: runtime)))
        case "overview":
            let window = query["window"] ?? "1h"
            guard let seconds = AdminQuery.window(window), seconds <= 366 * 86_400 else {
                return eventLoop.makeSucceededFuture(badRequest("window must be like 15m, 1h, 24h or 7d"))
            }
            let now = runtime.now
            let levels = runtime.metrics.levels
            let scope = user.isAdmin ? nil : user.name
            return read(runtime, eventLoop) { store in
                .json(.ok, AdminAnswers.overview(try store.overview(since: now.addingTimeInterval(-seconds), until: now.addingTimeInterval(1), user: scope),
                                                 window: window, levels: levels))
            }
        case "requests":
            let requested = query["user"]
            guard user.isAdmin || requested == nil || requested == user.name else { return eventLoop.makeSucceededFuture(forbidden) }
            let filter = HistoryStore.RequestQuery(limit: query.integer("limit") ?? 50, before: query.integer("before").map(Int64.init),
                                                   user: user.isAdmin ? requested : user.name, credential: query["credential"],
                                                   outcome: query["outcome"])
            return read(runtime, eventLoop) { store in
                let rows = try store.requests(filter)
                let next: JSONValue = rows.count == max(1, min(filter.limit, 1000)) ? rows.last?.id.map { .integer($0) } ?? .null : .null
                return .json(.ok, .object(["data": .array(rows.map(AdminAnswers.request)), "next_before": next]))
            }
        case "usage", "usage.csv":
            guard let grouping = HistoryStore.UsageGrouping(rawValue: query["group_by"] ?? "user") else {
                return eventLoop.makeSucceededFuture(badRequest("group_by must be user, credential or model"))
            }
            let now = runtime.now
            let since = query.date("since") ?? now.addingTimeInterval(-30 * 86_400)
            let until = query.date("until") ?? now.addingTimeInterval(1)
            let scope = user.isAdmin ? nil : user.name
            let csv = resource == "usage.csv"
            let limits = UserLimitsAnswer.json(runtime.configuration.users.filter { user.isAdmin || $0.name == user.name }, book: runtime.userLimits, now: now)
            return read(runtime, eventLoop) { store in
                let rows = try store.usage(groupBy: grouping, since: since, until: until, user: scope)
                guard csv else { return .json(.ok, AdminAnswers.usage(rows, groupedBy: grouping, limits: limits)) }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "text/csv; charset=utf-8")
                headers.add(name: "content-disposition", value: "attachment; filename=\"codexpool-usage-by-\(grouping.rawValue).csv\"")
                return GatewayResponse(status: .ok, headers: headers, body: Array(AdminAnswers.usageCSV(rows, groupedBy: grouping).utf8))
            }
        default:
            guard let metric = query["metric"].flatMap(HistoryMetric.init(rawValue:)) else {
                let names = HistoryMetric.allCases.map(\.rawValue).joined(separator: ", ")
                return eventLoop.makeSucceededFuture(badRequest("metric must be one of \(names)"))
            }
            let now = runtime.now
            let since = query.date("since") ?? now.addingTimeInterval(-3600)
            let until = query.date("until") ?? now.addingTimeInterval(1)
            let step = query["step"].flatMap(MetricStep.init(rawValue:)) ?? (until.timeIntervalSince(since) > 6 * 3600 ? .minute : .fiveSeconds)
            return read(runtime, eventLoop) { store in
                .json(.ok, AdminAnswers.series(try store.series(metric, step: step, since: since, until: until), metric: metric, step: step))
            }
        }
    }

    /// Every credential of the user's pool (all of them for an admin).
    static func credentials(for user: AuthenticatedUser, runtime: GatewayRuntime) -> JSONValue {
        let now = runtime.now
        let tunnels = runtime.tunnelHealth
        let (states, sessions) = runtime.withPool { pool in
            let tags = user.isAdmin ? pool.order.filter { !pool.isBalancer($0) } : pool.members(of: user.provider)
            return (tags.compactMap { pool[$0] }, pool.sessionCounts(now: now))
        }
        let aggregate = runtime.aggregate(for: user)
        return .object([
            "viewer": .object(["name": .string(user.name), "admin": .bool(user.isAdmin)]),
            "aggregate": .object([
                "five_hour_used_percent": .number((aggregate.fiveHourUtilization * 100).rounded() / 100),
                "five_hour_resets_at": aggregate.fiveHourReset.map { .number($0.timeIntervalSince1970.rounded()) } ?? .null,
                "weekly_used_percent": .number((aggregate.weeklyUtilization * 100).rounded() / 100),
                "weekly_resets_at": aggregate.weeklyReset.map { .number($0.timeIntervalSince1970.rounded()) } ?? .null,
            ]),
            "data": .array(states.map { AdminAnswers.credential($0, sessions: sessions[$0.tag] ?? 0, tunnel: tunnels[$0.tag], now: now) }),
        ])
    }

    private static func setEnabled(_ tag: String, _ enabled: Bool, user: AuthenticatedUser, runtime: GatewayRuntime,
                                   eventLoop: any EventLoop) -> EventLoopFuture<GatewayResponse> {
        guard user.isAdmin else { return eventLoop.makeSucceededFuture(forbidden) }
        guard runtime.withPool({ $0[tag] != nil }) else {
            return eventLoop.makeSucceededFuture(.error(.notFound, type: "invalid_request_error", message: "no credential tagged \(tag)"))
        }
        return runtime.setDisabledByAdmin(tag, !enabled, by: user.name.isEmpty ? "(open access)" : user.name, on: eventLoop)
            .map { GatewayResponse.json(.ok, .object(["tag": .string(tag), "enabled": .bool(enabled)])) }
            .recover { error in
                .error(.serviceUnavailable, type: "api_error", code: "history_unavailable", message: "the change could not be saved: \(error)")
            }
    }

    /// `POST /api/v1/reload`: re-reads the configuration file, as SIGHUP does; a refusal
    /// (422) carries the reason, e.g. the file, line and column of a mistake.
    private static func reload(user: AuthenticatedUser, runtime: GatewayRuntime, eventLoop: any EventLoop) -> EventLoopFuture<GatewayResponse> {
        guard user.isAdmin else { return eventLoop.makeSucceededFuture(forbidden) }
        guard let reloader = runtime.reloader.withLock({ $0 }) else {
            return eventLoop.makeSucceededFuture(.error(.conflict, type: "invalid_request_error", code: "reload_unavailable",
                                                        message: "this instance was started without a configuration file (serve --config FILE); there is nothing to reload"))
        }
        runtime.logger.notice("configuration reload requested by admin \(user.name.isEmpty ? "(open access)" : user.name)")
        let promise = eventLoop.makePromise(of: GatewayResponse.self)
        promise.completeWithTask {
            switch await reloader() {
            case .applied(let summary):
                .json(.ok, .object(["reloaded": .bool(true), "summary": .string(summary)]))
            case .refused(let reason):
                .error(.unprocessableEntity, type: "invalid_request_error", code: "reload_refused",
                       message: "nothing changed, the running configuration stays in force: \(reason)")
            }
        }
        return promise.futureResult
    }

    private static func read(_ runtime: GatewayRuntime, _ eventLoop: any EventLoop,
                             _ work: @escaping @Sendable (HistoryStore) throws -> GatewayResponse) -> EventLoopFuture<GatewayResponse> {
        guard let history = runtime.history else {
            return eventLoop.makeSucceededFuture(.error(.serviceUnavailable, type: "api_error", code: "history_unavailable",
                                                        message: "history is off on this instance (storage.enabled: false) or could not be opened"))
        }
        let promise = eventLoop.makePromise(of: GatewayResponse.self)
        history.recorder.read(work) { result in
            switch result {
            case .success(let response): promise.succeed(response)
            case .failure(let error): promise.succeed(.error(.serviceUnavailable, type: "api_error", code: "history_unavailable",
                                                             message: "history could not be read: \(error)"))
            }
        }
        return promise.futureResult
    }

    private static func badRequest(_ message: String) -> GatewayResponse {
        .error(.badRequest, type: "invalid_request_error", message: message)
    }

    private static let forbidden = GatewayResponse.error(.forbidden, type: "permission_error", code: "admin_only",
                                                          message: "only an admin user (admin: true) may do this")
}
