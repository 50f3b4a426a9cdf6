public import Foundation
import HTTPWire
import NIOCore
public import NIOHTTP1
public import PoolCore

/// Replaces per-account rate-limit headers with the user's aggregated status (§7.5 [L]): no
/// account's own numbers, overage or credits leave the gateway.
public enum RateLimitHeaderRewriter {
    static let droppedSuffixes = [
        "-primary-used-percent", "-primary-window-minutes", "-primary-reset-at", "-primary-reset-after-seconds",
        "-secondary-used-percent", "-secondary-window-minutes", "-secondary-reset-at", "-secondary-reset-after-seconds",
        "-limit-name", "-primary-over-secondary-limit-percent",
    ]

    /// The tracked family's rate-limit headers by their full names: one lookup settles almost
    /// every header of a Codex response; only other `x-` names go through the suffixes.
    private static let codexFamilyNames = HTTPHeaderNameSet(
        droppedSuffixes.map { "x-\(RateLimitSnapshot.trackedLimit)\($0)" }
            + ["x-codex-active-limit", "x-codex-plan-type", "x-codex-rate-limit-reached-type", "x-ocm-plan-weight"])
    private static let droppedSuffixNames = HTTPHeaderNameSet(droppedSuffixes)

    public static func isRateLimitHeader(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { isRateLimitHeader(UnsafeRawBufferPointer($0)) }
    }

    /// The same for a name where it lies in the bytes read.
    static func isRateLimitHeader(_ name: UnsafeRawBufferPointer) -> Bool {
        guard HTTPToken.name(name, hasPrefix: "x-") else { return false }
        return codexFamilyNames.contains(name) || HTTPToken.name(name, hasPrefix: "x-codex-credits-") || droppedSuffixNames.containsSuffix(of: name)
    }

    /// `headers` without any rate-limit header, plus the aggregate's.
    public static func rewrite(_ headers: HTTPHeaders, with status: AggregateStatus, now: Date) -> HTTPHeaders {
        rewritten(headers, keeping: { _ in true }, with: status, now: now)
    }

    /// An upstream response's headers as the client gets them, in one pass: those that may cross
    /// the proxy (`HeaderHygiene`) without any rate-limit header, plus the aggregate's.
    public static func clientResponseHeaders(_ upstream: HTTPHeaders, with status: AggregateStatus, now: Date) -> HTTPHeaders {
        rewritten(upstream, keeping: HeaderHygiene.forwardsResponseHeader, with: status, now: now)
    }

    private static func rewritten(_ headers: HTTPHeaders, keeping keeps: (String) -> Bool, with status: AggregateStatus, now: Date) -> HTTPHeaders {
        // Collected as pairs and wrapped once: `HTTPHeaders.add` re-checks every name.
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count + 7)
        for (name, value) in headers where keeps(name) && !isRateLimitHeader(name) { fields.append((name, value)) }
        fields += aggregateHeaders(status, now: now)
        return HTTPHeaders(fields)
    }

    /// The header lines of an upstream answer as the client gets them, written from the bytes
    /// read: those that may cross the proxy without any rate-limit header or `replaced` one, then
    /// the aggregate's and the serving credential's. Gives whether a length was among those written.
    static func writeClientHeaderLines(of upstream: ReceivedResponseHead, replacing replaced: StaticString, aggregate: AggregateStatus,
                                       servedBy credential: String, into buffer: inout ByteBuffer) -> Bool {
        var givesLength = false
        upstream.withFields { bytes, fields in
            buffer.reserveCapacity(minimumWritableBytes: bytes.count + 512)
            for field in fields {
                let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
                guard HeaderHygiene.forwardsResponseHeader(name), !isRateLimitHeader(name), !HTTPToken.name(name, is: replaced) else { continue }
                if HTTPToken.name(name, is: "content-length") { givesLength = true }
                buffer.writeBytes(name)
                buffer.writeStaticString(": ")
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.value]))
                buffer.writeStaticString("\r\n")
            }
        }
        writeAggregateHeaderLines(aggregate, into: &buffer)
        buffer.writeStaticString(replaced)
        buffer.writeStaticString(": ")
        buffer.writeString(credential)
        buffer.writeStaticString("\r\n")
        return givesLength
    }

    /// The aggregate as Codex reads it: both windows with length and reset, and the plan weight.
    public static func aggregateHeaders(_ status: AggregateStatus, now: Date) -> [(String, String)] {
        // Read back from the lines, so that the two forms cannot say different things.
        var buffer = ByteBuffer()
        writeAggregateHeaderLines(status, into: &buffer)
        return String(buffer: buffer).split(separator: "\r\n").map { line in
            guard let separator = line.firstRange(of: ": ") else { return (String(line), "") }
            return (String(line[..<separator.lowerBound]), String(line[separator.upperBound...]))
        }
    }

    /// The aggregate's header lines written as bytes (every answer carries them: no strings).
    static func writeAggregateHeaderLines(_ status: AggregateStatus, into buffer: inout ByteBuffer) {
        writeWindowLines(used: "x-codex-primary-used-percent: ", length: "x-codex-primary-window-minutes: 300\r\n",
                         reset: "x-codex-primary-reset-at: ", utilization: status.fiveHourUtilization, resetAt: status.fiveHourReset, into: &buffer)
        writeWindowLines(used: "x-codex-secondary-used-percent: ", length: "x-codex-secondary-window-minutes: 10080\r\n",
                         reset: "x-codex-secondary-reset-at: ", utilization: status.weeklyUtilization, resetAt: status.weeklyReset, into: &buffer)
        if status.planWeight > 0 {
            buffer.writeStaticString("x-ocm-plan-weight: ")
            buffer.writeString(shortest(status.planWeight))
            buffer.writeStaticString("\r\n")
        }
    }

    /// One window's lines: its use, its length (a fixed line) and, while one is known, its reset.
    private static func writeWindowLines(used: StaticString, length: StaticString, reset: StaticString, utilization: Double, resetAt: Date?,
                                         into buffer: inout ByteBuffer) {
        buffer.writeStaticString(used)
        writeTwoDecimals(utilization, into: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeStaticString(length)
        if let resetAt {
            buffer.writeStaticString(reset)
            writeDecimal(Int(resetAt.timeIntervalSince1970.rounded()), into: &buffer)
            buffer.writeStaticString("\r\n")
        }
    }

    /// `value` as `%.2f` would print it.
    private static func writeTwoDecimals(_ value: Double, into buffer: inout ByteBuffer) {
        guard value.isFinite, abs(value) < 1e12 else { return _ = buffer.writeString(String(format: "%.2f", value)) }
        let hundredths = Int((abs(value) * 100).rounded())
        if value < 0, hundredths > 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        writeDecimal(hundredths / 100, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(hundredths % 100 / 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(hundredths % 10))
    }

    /// A whole number in decimal digits.
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(digits)[start...]))
        }
    }

    private static func shortest(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
