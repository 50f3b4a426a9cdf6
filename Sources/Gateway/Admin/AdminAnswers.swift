import Foundation
import PoolCore
import Storage

/// The JSON of the admin API's answers (DESIGN.md "State, history and the admin surface"):
/// built from history rows and pool state, never holding a token or a request's content.
enum AdminAnswers {
    static func overview(_ overview: HistoryOverview, window: String, levels: (inFlight: Int, webSockets: Int)) -> JSONValue {
        let tokens = overview.tokens
        return .object([
            "window": .string(window),
            "requests": .integer(Int64(overview.requests)),
            "failures": .integer(Int64(overview.failures)),
            "failure_rate": .number(overview.requests == 0 ? 0 : Double(overview.failures) / Double(overview.requests)),
            "outcomes": .object(overview.outcomes.mapValues { .integer(Int64($0)) }),
            "ttfb_ms": percentiles(overview.timeToFirstByte),
            "duration_ms": percentiles(overview.duration),
            "tokens": self.tokens(tokens),
            "cache_hit_rate": .number(tokens.input == 0 ? 0 : Double(tokens.cachedInput) / Double(tokens.input)),
            "cost_usd": .number(overview.costUSD),
            "failovers": .integer(Int64(overview.failovers)),
            "in_flight": .integer(Int64(levels.inFlight)),
            "websocket_sessions": .integer(Int64(levels.webSockets)),
        ])
    }

    static func tokens(_ tokens: TokenCounts) -> JSONValue {
        .object(["input": .integer(Int64(tokens.input)), "cached_input": .integer(Int64(tokens.cachedInput)),
                 "output": .integer(Int64(tokens.output)), "reasoning": .integer(Int64(tokens.reasoning))])
    }

    private static func percentiles(_ values: Percentiles) -> JSONValue {
        .object(["p50": values.p50.map(JSONValue.number) ?? .null, "p95": values.p95.map(JSONValue.number) ?? .null,
                 "p99": values.p99.map(JSONValue.number) ?? .null])
    }

    static func request(_ record: RequestRecord) -> JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        return .object([
            "id": record.id.map { .integer($0) } ?? .null, "time": .number(record.time), "request_id": .string(record.requestID),
            "user": .string(record.user), "credential": optional(record.credential), "connector_credential": optional(record.connectorCredential),
            "model": optional(record.model), "transport": .string(record.transport), "route": .string(record.route),
            "outcome": .string(record.outcome), "status": record.status.map { .integer(Int64($0)) } ?? .null,
            "ttfb_ms": record.timeToFirstByteMilliseconds.map(JSONValue.number) ?? .null, "duration_ms": .number(record.durationMilliseconds),
            "tokens": tokens(TokenCounts(input: record.inputTokens, cachedInput: record.cachedInputTokens, output: record.outputTokens,
                                         reasoning: record.reasoningTokens)),
            "cost_usd": .number(record.costUSD), "failovers": .integer(Int64(record.failovers)), "error": optional(record.error),
        ])
    }

    /// - Parameter limits: each visible user's use against their limits (`UserLimitsAnswer`).
    static func usage(_ rows: [UsageRow], groupedBy grouping: HistoryStore.UsageGrouping, limits: JSONValue) -> JSONValue {
        .object(["group_by": .string(grouping.rawValue), "data": .array(rows.map { row in
            .object(["key": .string(row.key), "requests": .integer(Int64(row.requests)), "failures": .integer(Int64(row.failures)),
                     "tokens": tokens(row.tokens), "cost_usd": .number(row.costUSD)])
        }), "limits": limits])
    }

    static func usageCSV(_ rows: [UsageRow], groupedBy grouping: HistoryStore.UsageGrouping) -> String {
        var lines = ["\(grouping.rawValue),requests,failures,input_tokens,cached_input_tokens,output_tokens,reasoning_tokens,cost_usd"]
        for row in rows {
            let key = row.key.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + row.key.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : row.key
            lines.append([key, "\(row.requests)", "\(row.failures)", "\(row.tokens.input)", "\(row.tokens.cachedInput)", "\(row.tokens.output)",
                          "\(row.tokens.reasoning)", String(format: "%.6f", row.costUSD)].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func series(_ samples: [MetricSample], metric: HistoryMetric, step: MetricStep) -> JSONValue {
        .object(["metric": .string(metric.rawValue), "step": .string(step.rawValue),
                 "points": .array(samples.map { .array([.number($0.time), .number($0.value)]) })])
    }

    /// One credential for the operator: plan, windows, pace and projected exhaustion.
    static func credential(_ state: CredentialState, sessions: Int, tunnel: TunnelHealth?, now: Date) -> JSONValue {
        let usability = state.usability(now: now)
        return .object([
            "tag": .string(state.tag), "kind": .string(state.isExternal ? "external" : "local"),
            "plan": state.usage.planType.map(JSONValue.string) ?? .null, "plan_weight": .number(state.planWeight),
            "enabled": .bool(!state.disabledByAdmin),
            "usable": .bool(usability.isUsable),
            "why_not": { if case .unusable(let reason) = usability { return .string(reason.description(now: now)) } else { return .null } }(),
            "five_hour": window(state, .fiveHour, minutes: 300, now: now),
            "weekly": window(state, .weekly, minutes: 10080, now: now),
            "sessions": .integer(Int64(sessions)),
            "connector": tunnel.map { health in
                .object(["online": .bool(health.online), "since": .number(health.since.timeIntervalSince1970.rounded()),
                         "disconnects": .integer(Int64(health.disconnects))])
            } ?? .null,
        ])
    }

    /// A window's use, reset, the pace since it began (points per hour) and when that pace would
    /// use it up — null when the reset comes first or there is no pace.
    private static func window(_ state: CredentialState, _ kind: WindowKind, minutes: Int, now: Date) -> JSONValue {
        let used = state.usage.usedPercent(kind, now: now)
        let reset = state.usage.resetAt(kind, now: now)
        var burn: Double?
        var exhaustion: Date?
        if let reset {
            let started = reset.addingTimeInterval(-Double(minutes) * 60)
            let elapsed = now.timeIntervalSince(started)
            if elapsed > 60, used > 0 {
                let perHour = used / (elapsed / 3600)
                burn = perHour
                let at = now.addingTimeInterval(max(0, 100 - used) / perHour * 3600)
                if at < reset { exhaustion = at }
            }
        }
        return .object([
            "used_percent": .number((used * 100).rounded() / 100),
            "resets_at": reset.map { .number($0.timeIntervalSince1970.rounded()) } ?? .null,
            "burn_percent_per_hour": burn.map { .number(($0 * 100).rounded() / 100) } ?? .null,
            "projected_exhaustion_at": exhaustion.map { .number($0.timeIntervalSince1970.rounded()) } ?? .null,
        ])
    }
}
