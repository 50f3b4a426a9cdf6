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

    /// Whether `kind(ofBytes:)` could find this message to be anything but `.other`: a look at
    /// its top-level type only, for the many messages (output deltas) that pass untouched.
    public static func isActedOn(_ message: UnsafeRawBufferPointer) -> Bool {
        InterestingType(in: message) != nil
    }

    /// `kind(of:)` on bytes where they lie: every message of every answer goes through this,
    /// and the generic collection path cost more than the look at the message itself.
    public static func kind(ofBytes message: UnsafeRawBufferPointer) -> (Kind, JSONValue?) {
        guard let type = InterestingType(in: message) else { return (.other, nil) }
        switch type {
        case .completed:
            // Only the usage is needed: decode just that, not the whole answer it carries.
            let decoded = CompletedEventWire(json: message)
            guard let event = decoded, event.type == "response.completed" else { return (.other, nil) }
            return (.completed(CompletedUsage(event)), nil)
        case .rateLimits:
            // Read where it lies by the relay, which rewrites it (and checks it is JSON throughout).
            return (.rateLimits, nil)
        case .error, .failed, .incomplete, .metadata:
            break
        }
        let value = GatewayJSON.parse(message)
        // Only a message that is JSON throughout counts.
        guard value?["type"]?.stringValue == type.name.description else { return (.other, nil) }
        switch type {
        case .error:
            let status = (value?["status_code"] ?? value?["status"])?.numberValue.map { Int($0) }
            return (.error(status: status), value)
        case .failed, .incomplete:
            return (.failed, nil)
        case .metadata:
            return (.metadata, nil)
        case .completed, .rateLimits:
            return (.other, nil)
        }
    }

    /// The top-level types the gateway acts on.
    private enum InterestingType: CaseIterable {
        case rateLimits, error, completed, failed, incomplete, metadata

        var name: StaticString {
            switch self {
            case .rateLimits: "codex.rate_limits"
            case .error: "error"
            case .completed: "response.completed"
            case .failed: "response.failed"
            case .incomplete: "response.incomplete"
            case .metadata: "response.metadata"
            }
        }

        private static let typeKey = Array("type".utf8)
        /// Made once: `allCases` builds its array at every use.
        private static let candidates = allCases

        /// Which of them the message's top-level `type` is; nil for none. This runs for every SSE
        /// event and WebSocket message: the members before `type` (usually none) are skipped and
        /// the rest of the message, an output delta's text, is not read at all.
        init?(in bytes: UnsafeRawBufferPointer) {
            var scanner = JSONFieldScanner(bytes: bytes)
            guard scanner.seek(toMember: Self.typeKey), let type = scanner.rawString(), let base = type.baseAddress else { return nil }
            // Most messages are deltas: the length alone rules them out before any comparison.
            for candidate in Self.candidates where candidate.name.utf8CodeUnitCount == type.count {
                if memcmp(base, candidate.name.utf8Start, type.count) == 0 {
                    self = candidate
                    return
                }
            }
            return nil
        }
    }

    /// The upstream `codex.rate_limits` event with both windows replaced by the aggregate and
    /// `plan_weight` added; every other member (plan type, credits, limit names) is copied as
    /// it came.
    public static func rewriteRateLimits(_ event: RateLimitsEvent, in bytes: UnsafeRawBufferPointer, with status: AggregateStatus, now: Date) -> [UInt8] {
        let exhausted = status.fiveHourUtilization >= 100 || status.weeklyUtilization >= 100
        var writer = RateLimitsEventWriter(event: event, bytes: bytes)
        writer.writeMembers(droppingAll: .planWeight) { writer in
            writer.writeLimits(allowed: !exhausted) { writer in
                writer.writeWindow("primary", used: status.fiveHourUtilization, minutes: 300, reset: status.fiveHourReset, now: now)
                writer.writeWindow("secondary", used: status.weeklyUtilization, minutes: 10080, reset: status.weeklyReset, now: now)
            }
        }
        if !event.members.contains(where: { $0.name == .limitName || $0.name == .meteredLimitName }) {
            writer.writeMember("limit_name") { $0.writePlainString("codex") }
        }
        if status.planWeight > 0 { writer.writeMember("plan_weight") { $0.writeNumber(status.planWeight) } }
        return writer.finish()
    }

    /// An event about another limit family with its windows replaced by the pool's view of that
    /// family (slots as the backend fills them: the 5-hour window first when there is one).
    public static func rewriteRateLimits(_ event: RateLimitsEvent, in bytes: UnsafeRawBufferPointer, family: AdditionalRateLimit, now: Date) -> [UInt8] {
        let windows = [family.windows.fiveHour, family.windows.weekly].compactMap { $0 }
        var writer = RateLimitsEventWriter(event: event, bytes: bytes)
        writer.writeMembers(droppingAll: nil) { writer in
            writer.writeLimits(allowed: nil) { writer in
                for (slot, name) in [(0, "primary" as StaticString), (1, "secondary")] {
                    guard slot < windows.count else {
                        writer.writeMember(name) { $0.writeNull() }
                        continue
                    }
                    let window = windows[slot]
                    writer.writeWindow(name, used: window.usedPercent, minutes: window.windowMinutes ?? 0, reset: window.resetAt, now: now)
                }
            }
        }
        return writer.finish()
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
}
