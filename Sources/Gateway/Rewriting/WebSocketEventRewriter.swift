public import Foundation
public import PoolCore

/// Reads and rewrites the upstream → client events of the Responses WebSocket (§8.4–8.6).
///
/// `codex.rate_limits` is replaced in place by the same event carrying the user's aggregate
/// (the position inside the turn is where Codex expects it); `error` events use `status_code`
/// only, because Codex rejects an event with both `status` and `status_code`.
public enum WebSocketEventRewriter {
    /// What an upstream text message is, judged from its `type`.
    public enum Kind: Hashable, Sendable {
        case rateLimits
        case error(status: Int?)
        /// `response.completed`, with its token usage when it reports any.
        case completed(CompletedUsage?)
        /// `response.failed` or `response.incomplete`: the turn ended without a whole answer.
        case failed
        /// `response.metadata`: headers of the answer, e.g. the turn's `x-codex-turn-state`.
        case metadata
        case other
    }

    /// Classifies a message. Only the few kinds the gateway acts on are parsed, and only
    /// after a cheap look at their top-level type, so output deltas pass untouched.
    public static func kind(of message: some Collection<UInt8>) -> (Kind, JSONValue?) {
        message.withContiguousBytes { kind(ofBytes: $0) }
    }

    /// `kind(of:)` on bytes where they lie: every message of every answer goes through this,
    /// and the generic collection path cost more than the look at the message itself.
    public static func kind(ofBytes message: UnsafeRawBufferPointer) -> (Kind, JSONValue?) {
        guard let type = interestingType(in: message) else { return (.other, nil) }
        if type == "response.completed" {
            // Only the usage is needed: decode just that, not the whole answer it carries.
            let decoded = CompletedEventWire(json: message)
            guard let event = decoded, event.type == type else { return (.other, nil) }
            return (.completed(CompletedUsage(event)), nil)
        }
        let value = GatewayJSON.parse(message)
        // Only a message that is JSON throughout counts.
        guard value?["type"]?.stringValue == type else { return (.other, nil) }
        switch type {
        case "codex.rate_limits":
            return (.rateLimits, value)
        case "error":
            let status = (value?["status_code"] ?? value?["status"])?.numberValue.map { Int($0) }
            return (.error(status: status), value)
        case "response.failed", "response.incomplete":
            return (.failed, nil)
        case "response.metadata":
            return (.metadata, nil)
        default:
            return (.other, nil)
        }
    }

    private static let interestingTypes: [StaticString] = ["codex.rate_limits", "error", "response.completed", "response.failed", "response.incomplete",
                                                           "response.metadata"]
    private static let typeKey = Array("type".utf8)

    /// Which of the interesting types the message's top-level `type` is; nil for none. This runs
    /// for every SSE event and WebSocket message: the members before `type` (usually none) are
    /// skipped and the rest of the message, an output delta's text, is not read at all.
    private static func interestingType(in bytes: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONFieldScanner(bytes: bytes)
        guard scanner.seek(toMember: typeKey), let type = scanner.rawString(), let base = type.baseAddress else { return nil }
        // Most messages are deltas: the length alone rules them out before any comparison.
        for candidate in interestingTypes where candidate.utf8CodeUnitCount == type.count {
            if memcmp(base, candidate.utf8Start, type.count) == 0 { return candidate.description }
        }
        return nil
    }

    /// The upstream `codex.rate_limits` event with both windows replaced by the aggregate and
    /// `plan_weight` added; every other field (plan type, credits, limit names) is kept.
    public static func rewriteRateLimits(_ event: JSONValue?, with status: AggregateStatus, now: Date) -> Data {
        var object = event?.objectValue ?? ["type": .string("codex.rate_limits")]
        var limits = object["rate_limits"]?.objectValue ?? [:]
        limits["primary"] = window(status.fiveHourUtilization, minutes: 300, reset: status.fiveHourReset, now: now)
        limits["secondary"] = window(status.weeklyUtilization, minutes: 10080, reset: status.weeklyReset, now: now)
        let exhausted = status.fiveHourUtilization >= 100 || status.weeklyUtilization >= 100
        if limits["allowed"] != nil { limits["allowed"] = .bool(!exhausted) }
        if limits["limit_reached"] != nil { limits["limit_reached"] = .bool(exhausted) }
        object["rate_limits"] = .object(limits)
        if object["limit_name"] == nil, object["metered_limit_name"] == nil { object["limit_name"] = .string("codex") }
        if status.planWeight > 0 { object["plan_weight"] = .number(status.planWeight) } else { object["plan_weight"] = nil }
        return GatewayJSON.data(.object(object))
    }

    /// An event about another limit family with its windows replaced by the pool's view of that
    /// family (slots as the backend fills them: the 5-hour window first when there is one).
    public static func rewriteRateLimits(_ event: JSONValue?, family: AdditionalRateLimit, now: Date) -> Data {
        var object = event?.objectValue ?? ["type": .string("codex.rate_limits")]
        var limits = object["rate_limits"]?.objectValue ?? [:]
        let windows = [family.windows.fiveHour, family.windows.weekly].compactMap { $0 }
        limits["primary"] = windows.first.map { window($0.usedPercent, minutes: $0.windowMinutes ?? 0, reset: $0.resetAt, now: now) } ?? .null
        limits["secondary"] = windows.count > 1 ? window(windows[1].usedPercent, minutes: windows[1].windowMinutes ?? 0, reset: windows[1].resetAt, now: now) : .null
        object["rate_limits"] = .object(limits)
        return GatewayJSON.data(.object(object))
    }

    /// An upstream `error` event as the client gets it: `status_code` only, and the per-account
    /// rate-limit headers inside it replaced by the aggregate.
    public static func rewriteError(_ event: JSONValue, status: Int?, aggregate: AggregateStatus?, now: Date) -> Data {
        guard var object = event.objectValue else { return GatewayJSON.data(event) }
        object["status"] = nil
        if let status { object["status_code"] = .integer(Int64(status)) }
        if let aggregate, let headers = object["headers"]?.objectValue {
            var rewritten: [String: JSONValue] = [:]
            for (name, value) in headers where !RateLimitHeaderRewriter.isRateLimitHeader(name) { rewritten[name] = value }
            for (name, value) in RateLimitHeaderRewriter.aggregateHeaders(aggregate, now: now) { rewritten[name] = .string(value) }
            object["headers"] = .object(rewritten)
        }
        return GatewayJSON.data(.object(object))
    }

    /// The header-like view of an error event's `headers` object, for the rate-limit parsers.
    public static func errorHeaders(_ event: JSONValue?) -> HeaderFields {
        guard let headers = event?["headers"]?.objectValue else { return [] }
        return headers.compactMap { name, value in value.stringValue.map { (name: name, value: $0) } ?? value.numberValue.map { (name: name, value: String($0)) } }
    }

    private static func window(_ used: Double, minutes: Int, reset: Date?, now: Date) -> JSONValue {
        var window: [String: JSONValue] = ["used_percent": .number((used * 100).rounded() / 100), "window_minutes": .integer(Int64(minutes))]
        if let reset {
            window["reset_at"] = .integer(Int64(reset.timeIntervalSince1970.rounded()))
            window["reset_after_seconds"] = .integer(Int64(max(0, reset.timeIntervalSince(now)).rounded()))
        }
        return .object(window)
    }
}
