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
        values.reserveCapacity(headers.count)
        // This runs for every proxied response: only `x-…` names are read, and names already in
        // lower case (as upstream sends them) are not copied. Read backwards so that the first of
        // repeated headers is the one left, with one hash per header.
        for (name, value) in headers.reversed() where Self.isExtensionHeader(name) {
            values[name.asciiLowercased] = Self.trimmedSpaces(value)
        }
        self.init()
        let tracked = WindowKeys.trackedPrimary.hasUsedPercent(in: values) || WindowKeys.trackedSecondary.hasUsedPercent(in: values)
        let family = tracked ? Self.trackedLimit : Self.normalizedLimitID(values["x-codex-active-limit"])
        let primary = tracked ? WindowKeys.trackedPrimary : WindowKeys(prefix: "x-\(family)-primary")
        let secondary = tracked ? WindowKeys.trackedSecondary : WindowKeys(prefix: "x-\(family)-secondary")
        place(primary.window(in: values), slot: .primary)
        place(secondary.window(in: values), slot: .secondary)
        planType = values["x-codex-plan-type"].flatMap { $0.isEmpty ? nil : $0.lowercased() }
        additional = Self.additionalLimits(in: values, except: family)
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

    /// Every other family with a `x-<id>-primary-used-percent` (or secondary) header.
    private static func additionalLimits(in values: [String: String], except tracked: String) -> [AdditionalRateLimit] {
        var families: Set<String> = []
        // One suffix test passes over most headers (this runs for every response).
        for name in values.keys where name.hasSuffix("-used-percent") {
            for suffix in ["-primary-used-percent", "-secondary-used-percent"] where name.hasSuffix(suffix) {
                let family = String(name.dropFirst(2).dropLast(suffix.count))
                if !family.isEmpty, family != tracked { families.insert(family) }
            }
        }
        return families.sorted().map { family in
            var windows = RateLimitSnapshot()
            windows.place(WindowKeys(prefix: "x-\(family)-primary").window(in: values), slot: .primary)
            windows.place(WindowKeys(prefix: "x-\(family)-secondary").window(in: values), slot: .secondary)
            return AdditionalRateLimit(id: family, name: values["x-\(family)-limit-name"].flatMap { $0.isEmpty ? nil : $0 }, windows: windows)
        }
    }

    /// The header names of one window (`x-<family>-primary-…`), spelled once: the tracked
    /// family's are made once for all responses.
    private struct WindowKeys {
        let usedPercent: String, resetAt: String, windowMinutes: String

        init(prefix: String) {
            usedPercent = "\(prefix)-used-percent"
            resetAt = "\(prefix)-reset-at"
            windowMinutes = "\(prefix)-window-minutes"
        }

        static let trackedPrimary = WindowKeys(prefix: "x-\(trackedLimit)-primary")
        static let trackedSecondary = WindowKeys(prefix: "x-\(trackedLimit)-secondary")

        func hasUsedPercent(in values: [String: String]) -> Bool { values[usedPercent] != nil }

        func window(in values: [String: String]) -> RateLimitWindow? {
            RateLimitWindow.make(
                usedPercent: values[usedPercent].flatMap(Double.init),
                resetAt: values[resetAt].flatMap(unixDate),
                windowMinutes: values[windowMinutes].flatMap { Int($0) })
        }
    }

    /// The weekly window's start, for usage statistics: `reset-at − window length`.
    public var weeklyWindowStart: Date? {
        guard let weekly, let reset = weekly.resetAt, let minutes = weekly.windowMinutes, minutes > 0 else { return nil }
        return reset.addingTimeInterval(-Double(minutes) * 60)
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
