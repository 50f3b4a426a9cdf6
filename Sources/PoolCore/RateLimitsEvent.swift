/// A WebSocket `codex.rate_limits` event (codex-client.md §3.4) read where it lies: the fields
/// the pool reads, and where each member lies, so that a rewrite copies every member it does not
/// change instead of parsing the event into values and writing them all back (one such event
/// starts every turn).
///
/// Of a member named twice the first counts, as when the event is parsed as a value; a field
/// of an unexpected type counts as absent.
public struct RateLimitsEvent: Equatable {
    /// Where one member lies in the event's bytes: `bytes` runs from the opening quote of its
    /// name to the end of its value.
    public struct Member: Equatable, Sendable {
        public var name: Name
        public var bytes: Range<Int>
    }

    /// The members a rewrite acts on, told apart without a string made for any name.
    public enum Name: Equatable, Sendable {
        case type, limitName, meteredLimitName, planType, planWeight, credits, rateLimits
        case primary, secondary, allowed, limitReached
        case other

        init(_ key: JSONKey) {
            switch key {
            case "type": self = .type
            case "limit_name": self = .limitName
            case "metered_limit_name": self = .meteredLimitName
            case "plan_type": self = .planType
            case "plan_weight": self = .planWeight
            case "credits": self = .credits
            case "rate_limits": self = .rateLimits
            case "primary": self = .primary
            case "secondary": self = .secondary
            case "allowed": self = .allowed
            case "limit_reached": self = .limitReached
            default: self = .other
            }
        }
    }

    /// One window object (`rate_limits.primary` or `.secondary`), its fields as numbers.
    public struct Window: Equatable, Sendable {
        public var usedPercent: Double?
        public var resetAt: Double?
        public var resetAfterSeconds: Double?
        public var windowMinutes: Double?
    }

    /// The members of the event's object, in order.
    public private(set) var members: [Member] = []
    /// The members of its `rate_limits` object, in order; nil when that is absent or not an object.
    public private(set) var limitMembers: [Member]?
    public private(set) var limitName: String?
    public private(set) var meteredLimitName: String?
    public private(set) var planType: String?
    public private(set) var planWeight: Double?
    /// `credits.has_credits`, `.unlimited` and `.balance` (a number written as a string).
    public private(set) var hasCredits: Bool?
    public private(set) var unlimitedCredits: Bool?
    public private(set) var creditBalance: String?
    public private(set) var primary: Window?
    public private(set) var secondary: Window?

    /// nil unless the bytes are one JSON object whose `type` is `codex.rate_limits`.
    public init?(bytes: UnsafeRawBufferPointer) {
        var scanner = JSONFieldScanner(bytes: bytes)
        var type: String?
        var read: RateLimitsEvent?
        var empty = RateLimitsEvent()
        empty.members.reserveCapacity(8)
        let wellFormed = scanner.object(into: &read, from: empty) { scanner, event, key in
            guard let (name, first) = Self.noteMember(key, &scanner, in: bytes, into: &event.members) else { return false }
            guard var value = first else { return true }
            switch name {
            case .type: type = value.string()
            case .limitName: event.limitName = value.string()
            case .meteredLimitName: event.meteredLimitName = value.string()
            case .planType: event.planType = value.string()
            case .planWeight: return value.read(number: &event.planWeight)
            case .credits: return event.readCredits(&value)
            case .rateLimits: return event.readLimits(&value, in: bytes)
            default: break
            }
            return true
        }
        scanner.skipWhitespace()
        guard wellFormed, scanner.index == bytes.count, let read, type == "codex.rate_limits" else { return nil }
        self = read
    }

    private init() {}

    private mutating func readCredits(_ scanner: inout JSONFieldScanner) -> Bool {
        var found: (has: Bool?, unlimited: Bool?, balance: String?)?
        let read = scanner.object(into: &found, from: (nil, nil, nil)) { scanner, credits, key in
            switch key {
            case "has_credits" where credits.has == nil: credits.has = scanner.boolean()
            case "unlimited" where credits.unlimited == nil: credits.unlimited = scanner.boolean()
            case "balance" where credits.balance == nil:
                var text = scanner
                credits.balance = text.string()
                guard credits.balance == nil else {
                    scanner = text
                    return true
                }
                var number: Double?
                guard scanner.read(number: &number) else { return false }
                credits.balance = number.map { String($0) }
            default: return scanner.skipValue()
            }
            return true
        }
        (hasCredits, unlimitedCredits, creditBalance) = (found?.has, found?.unlimited, found?.balance)
        return read
    }

    private mutating func readLimits(_ scanner: inout JSONFieldScanner, in bytes: UnsafeRawBufferPointer) -> Bool {
        var found: (members: [Member], primary: Window?, secondary: Window?)?
        let read = scanner.object(into: &found, from: ([], nil, nil)) { scanner, limits, key in
            guard let (name, first) = Self.noteMember(key, &scanner, in: bytes, into: &limits.members) else { return false }
            guard var value = first else { return true }
            switch name {
            case .primary: return Self.readWindow(&value, into: &limits.primary)
            case .secondary: return Self.readWindow(&value, into: &limits.secondary)
            default: return true
            }
        }
        (limitMembers, primary, secondary) = (found?.members, found?.primary, found?.secondary)
        return read
    }

    /// Notes where the member at the scanner lies and moves past it; hands back a scanner at its
    /// value when it is the first of its name (a repeat is only noted). nil for a malformed value.
    private static func noteMember(_ key: JSONKey, _ scanner: inout JSONFieldScanner, in bytes: UnsafeRawBufferPointer,
                                   into members: inout [Member]) -> (Name, JSONFieldScanner?)? {
        let start = key.raw.startIndex(in: bytes) - 1
        let name = Name(key)
        let first = name == .other || !members.contains { $0.name == name }
        let value = scanner
        guard scanner.skipValue() else { return nil }
        members.append(Member(name: name, bytes: start..<scanner.index))
        return (name, first ? value : nil)
    }

    private static func readWindow(_ scanner: inout JSONFieldScanner, into window: inout Window?) -> Bool {
        scanner.object(into: &window, from: Window()) { scanner, window, key in
            switch key {
            case "used_percent" where window.usedPercent == nil: return scanner.read(number: &window.usedPercent)
            case "reset_at" where window.resetAt == nil: return scanner.read(number: &window.resetAt)
            case "reset_after_seconds" where window.resetAfterSeconds == nil: return scanner.read(number: &window.resetAfterSeconds)
            case "window_minutes" where window.windowMinutes == nil: return scanner.read(number: &window.windowMinutes)
            default: return scanner.skipValue()
            }
        }
    }
}

private extension UnsafeRawBufferPointer {
    /// Where this slice of `whole` starts in it.
    func startIndex(in whole: UnsafeRawBufferPointer) -> Int {
        guard let base = baseAddress, let wholeBase = whole.baseAddress else { return 0 }
        return wholeBase.distance(to: base)
    }
}
