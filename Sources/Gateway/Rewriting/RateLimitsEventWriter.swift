import Foundation
import PoolCore

/// Writes the `codex.rate_limits` event a client gets from the one upstream sent: each member
/// copied as it came unless it is replaced, the replacements written in its place.
struct RateLimitsEventWriter {
    private let event: RateLimitsEvent
    private let bytes: UnsafeRawBufferPointer
    private var output: [UInt8] = []
    /// Whether the object being written has a member yet (a comma goes before the next).
    private var hasMember = false

    init(event: RateLimitsEvent, bytes: UnsafeRawBufferPointer) {
        self.event = event
        self.bytes = bytes
        output.reserveCapacity(bytes.count + 192)
        output.append(UInt8(ascii: "{"))
    }

    /// The event's members in order, every one named `dropped` left out and the first
    /// `rate_limits` written by `limits` (at the end when the event has none).
    mutating func writeMembers(droppingAll dropped: RateLimitsEvent.Name?, limits: (inout Self) -> Void) {
        var wroteLimits = false
        for member in event.members where member.name != dropped {
            if member.name == .rateLimits {
                if !wroteLimits { limits(&self) }
                wroteLimits = true
            } else {
                copy(member)
            }
        }
        if !wroteLimits { limits(&self) }
    }

    /// `"rate_limits"` with the members upstream sent copied, except the windows, which `windows`
    /// writes; `allowed` and `limit_reached` follow `allowed` when it is given and they were sent.
    mutating func writeLimits(allowed: Bool?, windows: (inout Self) -> Void) {
        writeMember("rate_limits") { writer in
            writer.writeObject { writer in
                var wroteAllowed = false, wroteLimitReached = false
                for member in writer.event.limitMembers ?? [] where member.name != .primary && member.name != .secondary {
                    switch (member.name, allowed) {
                    case (.allowed, let allowed?):
                        if !wroteAllowed { writer.writeMember("allowed") { $0.writeLiteral(allowed ? "true" : "false") } }
                        wroteAllowed = true
                    case (.limitReached, let allowed?):
                        if !wroteLimitReached { writer.writeMember("limit_reached") { $0.writeLiteral(allowed ? "false" : "true") } }
                        wroteLimitReached = true
                    default:
                        writer.copy(member)
                    }
                }
                windows(&writer)
            }
        }
    }

    /// One window as the backend writes it, `used` rounded to hundredths.
    mutating func writeWindow(_ name: StaticString, used: Double, minutes: Int, reset: Date?, now: Date) {
        writeMember(name) { writer in
            writer.writeObject { writer in
                if let reset {
                    writer.writeMember("reset_after_seconds") { $0.writeInteger(Self.secondsLeft(until: reset, now: now)) }
                    writer.writeMember("reset_at") { $0.writeInteger(Int64(reset.timeIntervalSince1970.rounded())) }
                }
                writer.writeMember("used_percent") { $0.writeNumber((used * 100).rounded() / 100) }
                writer.writeMember("window_minutes") { $0.writeInteger(Int64(minutes)) }
            }
        }
    }

    /// A window's `reset_after_seconds`: the only part of a rewritten event that moves with the clock.
    static func secondsLeft(until reset: Date, now: Date) -> Int64 {
        Int64(max(0, reset.timeIntervalSince(now)).rounded())
    }

    /// A member of the object being written; `value` writes its value.
    mutating func writeMember(_ name: StaticString, value: (inout Self) -> Void) {
        separate()
        writePlainString(name)
        output.append(UInt8(ascii: ":"))
        value(&self)
    }

    /// A string that needs no escapes (the names and values codexpool writes itself).
    mutating func writePlainString(_ text: StaticString) {
        output.append(UInt8(ascii: "\""))
        writeLiteral(text)
        output.append(UInt8(ascii: "\""))
    }

    mutating func writeNumber(_ value: Double) {
        output.append(contentsOf: JSONValue.numberText(value).utf8)
    }

    mutating func writeNull() {
        writeLiteral("null")
    }

    mutating func finish() -> [UInt8] {
        output.append(UInt8(ascii: "}"))
        return output
    }

    private mutating func writeInteger(_ value: Int64) {
        output.append(contentsOf: String(value).utf8)
    }

    private mutating func writeLiteral(_ text: StaticString) {
        output.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// A nested object: its members separated among themselves.
    private mutating func writeObject(_ members: (inout Self) -> Void) {
        let outer = hasMember
        hasMember = false
        output.append(UInt8(ascii: "{"))
        members(&self)
        output.append(UInt8(ascii: "}"))
        hasMember = outer
    }

    private mutating func copy(_ member: RateLimitsEvent.Member) {
        separate()
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[member.bytes]))
    }

    private mutating func separate() {
        if hasMember { output.append(UInt8(ascii: ",")) }
        hasMember = true
    }
}
