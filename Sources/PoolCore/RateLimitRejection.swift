public import Foundation

/// What an upstream 429 (HTTP status or WebSocket `error` event) says about when to try again.
public struct RateLimitRejection: Hashable, Sendable {
    /// Rate-limit headers sent with the 429.
    public var snapshot: RateLimitSnapshot
    /// `Retry-After` in seconds.
    public var retryAfter: TimeInterval?
    /// `error.resets_at` / `error.resets_in_seconds` from the body.
    public var resetsAt: Date?

    /// How long a 429 blocks a credential when nothing says the account is exhausted:
    /// such 429s are about bursts or concurrency and clear within a minute or two.
    public static let shortCooldown: TimeInterval = 60
    public static let longestShortCooldown: TimeInterval = 300

    public init(snapshot: RateLimitSnapshot = RateLimitSnapshot(), retryAfter: TimeInterval? = nil, resetsAt: Date? = nil) {
        self.snapshot = snapshot
        self.retryAfter = retryAfter
        self.resetsAt = resetsAt
    }

    /// From an HTTP 429: its headers and (optional) JSON body.
    public init(headers: HeaderFields, body: Data?, now: Date) {
        self.init(snapshot: RateLimitSnapshot(headers: headers))
        retryAfter = headers.first { $0.name.lowercased() == "retry-after" }.flatMap { Self.parseRetryAfter($0.value) }
        if let body, let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: body) {
            resetsAt = envelope.error?.resetDate(now: now)
        }
    }

    /// From a WebSocket error event `{"type":"error","status_code":429,"error":{…},"headers":{…}}`
    /// (Codex also accepts `status` for `status_code`). nil for any other message.
    public init?(errorEvent data: Data, now: Date) {
        guard let event = try? JSONDecoder().decode(ErrorEvent.self, from: data), event.type == "error",
              (event.status_code ?? event.status) == 429 else { return nil }
        let headers = (event.headers ?? [:]).map { (name: $0.key, value: $0.value.text) }
        self.init(headers: headers, body: nil, now: now)
        resetsAt = event.error?.resetDate(now: now)
    }

    /// Until when the credential must not be used.
    ///
    /// An exhausted window blocks until it resets. A 429 whose reported windows are all under
    /// 100 % is a short cooldown — never the hours until the 5-hour reset.
    public func limitedUntil(now: Date) -> Date {
        let windows = [snapshot.fiveHour, snapshot.weekly].compactMap { $0 }
        let exhaustedResets = windows.filter { $0.usedPercent >= 100 }.compactMap(\.resetAt).filter { $0 > now }
        if let latest = exhaustedResets.max() { return latest }
        if !windows.isEmpty, windows.allSatisfy({ $0.usedPercent < 100 }) {
            return now.addingTimeInterval(min(retryAfter ?? Self.shortCooldown, Self.longestShortCooldown))
        }
        if let resetsAt, resetsAt > now { return resetsAt }
        if let retryAfter { return now.addingTimeInterval(retryAfter) }
        return now.addingTimeInterval(Self.shortCooldown)
    }

    /// `Retry-After` as delay seconds (HTTP dates are not used by this backend); nil when invalid.
    public static func parseRetryAfter(_ text: String) -> TimeInterval? {
        guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds > 0 else { return nil }
        return min(seconds, 30 * 24 * 3600)
    }
}

private struct ErrorEnvelope: Decodable {
    var error: ErrorBody?
}

private struct ErrorBody: Decodable {
    var resets_at: Double?
    var resets_in_seconds: Double?

    func resetDate(now: Date) -> Date? {
        resets_at.flatMap(RateLimitSnapshot.unixDate)
            ?? resets_in_seconds.flatMap { $0 > 0 ? RateLimitSnapshot.unixDate(now.timeIntervalSince1970 + $0) : nil }
    }
}

private struct ErrorEvent: Decodable {
    var type: String?
    var status_code: Int?
    var status: Int?
    var error: ErrorBody?
    var headers: [String: HeaderValue]?
}

/// Header values in error events are strings, but numbers have been seen too.
private struct HeaderValue: Decodable {
    var text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else if let number = try? container.decode(Double.self) {
            text = number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
        } else {
            text = String(try container.decode(Bool.self))
        }
    }
}
