public import Foundation

/// Header fields in order, as name–value pairs (NIO's `HTTPHeaders` converts with `Array(_:)`).
public typealias HeaderFields = [(name: String, value: String)]

extension RateLimitSnapshot {
    /// Reads the `x-codex-*` response headers (codex-client.md §3.3) of an HTTP response,
    /// a WebSocket upgrade or a 429.
    ///
    /// The `codex` family is tracked; when a response carries only another family (the one
    /// `x-codex-active-limit` names), that one is used instead.
    public init(headers: HeaderFields) {
        var values: [String: String] = [:]
        // This runs for every proxied response: only `x-…` names are lowercased and trimmed.
        for (name, value) in headers where Self.isExtensionHeader(name) {
            let key = name.lowercased()
            if values[key] == nil { values[key] = Self.trimmedSpaces(value) }
        }
        self.init()
        let active = Self.normalizedLimitID(values["x-codex-active-limit"])
        let family = Self.hasWindowHeaders(values, family: Self.trackedLimit) ? Self.trackedLimit : active
        place(Self.headerWindow(values, prefix: "x-\(family)-primary"), slot: .primary)
        place(Self.headerWindow(values, prefix: "x-\(family)-secondary"), slot: .secondary)
        planType = values["x-codex-plan-type"].flatMap { $0.isEmpty ? nil : $0.lowercased() }
        if let weight = values["x-ocm-plan-weight"].flatMap(Double.init), weight.isFinite, weight > 0 {
            peerPlanWeight = weight
        }
        if let has = values["x-codex-credits-has-credits"].flatMap(Self.headerBool) {
            credits = RateLimitCredits(
                hasCredits: has,
                unlimited: values["x-codex-credits-unlimited"].flatMap(Self.headerBool) ?? false,
                balance: values["x-codex-credits-balance"] ?? "")
        }
    }

    /// The weekly window's start, for usage statistics: `reset-at − window length`.
    public var weeklyWindowStart: Date? {
        guard let weekly, let reset = weekly.resetAt, let minutes = weekly.windowMinutes, minutes > 0 else { return nil }
        return reset.addingTimeInterval(-Double(minutes) * 60)
    }

    private static func hasWindowHeaders(_ values: [String: String], family: String) -> Bool {
        values["x-\(family)-primary-used-percent"] != nil || values["x-\(family)-secondary-used-percent"] != nil
    }

    private static func headerWindow(_ values: [String: String], prefix: String) -> RateLimitWindow? {
        RateLimitWindow.make(
            usedPercent: values["\(prefix)-used-percent"].flatMap(Double.init),
            resetAt: values["\(prefix)-reset-at"].flatMap(unixDate),
            windowMinutes: values["\(prefix)-window-minutes"].flatMap { Int($0) })
    }

    /// Whether the name starts with `x-` in any case: every rate-limit header does, so the
    /// other headers of a response can be passed over without lowercasing them.
    public static func isExtensionHeader(_ name: String) -> Bool {
        var bytes = name.utf8.makeIterator()
        return bytes.next().map { $0 | 0x20 } == UInt8(ascii: "x") && bytes.next() == UInt8(ascii: "-")
    }

    /// Spaces and tabs around a header value removed (the value is ASCII in practice).
    private static func trimmedSpaces(_ value: String) -> String {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let utf8 = value.utf8
        guard let first = utf8.first, let last = utf8.last, isSpace(first) || isSpace(last) else { return value }
        guard let start = utf8.firstIndex(where: { !isSpace($0) }), let end = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(value[start...end])
    }

    /// `True`/`False` in any case, or `1`/`0`.
    static func headerBool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "1": true
        case "false", "0": false
        default: nil
        }
    }

    /// Unix seconds to a date; nil for zero, negative or absurd values.
    static func unixDate(_ text: String) -> Date? {
        guard let seconds = Double(text) else { return nil }
        return unixDate(seconds)
    }

    static func unixDate(_ seconds: Double) -> Date? {
        guard seconds.isFinite, seconds > 0, seconds < 100_000_000_000 else { return nil }
        return Date(timeIntervalSince1970: seconds)
    }
}
