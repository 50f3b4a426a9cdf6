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
    /// read: those that may cross the proxy without any rate-limit header or `replaced` one,
    /// then `added`. Gives whether a length was among those written.
    static func writeClientHeaderLines(of upstream: ReceivedResponseHead, replacing replaced: StaticString, adding added: [(String, String)],
                                       into buffer: inout ByteBuffer) -> Bool {
        var givesLength = false
        upstream.withFields { bytes, fields in
            buffer.reserveCapacity(minimumWritableBytes: bytes.count + 64 * added.count)
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
        for (name, value) in added {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        return givesLength
    }

    /// The aggregate as Codex reads it: both windows with length and reset, and the plan weight.
    public static func aggregateHeaders(_ status: AggregateStatus, now: Date) -> [(String, String)] {
        var headers = [
            ("x-codex-primary-used-percent", twoDecimals(status.fiveHourUtilization)),
            ("x-codex-primary-window-minutes", "300"),
        ]
        if let reset = status.fiveHourReset { headers.append(("x-codex-primary-reset-at", String(Int(reset.timeIntervalSince1970.rounded())))) }
        headers.append(("x-codex-secondary-used-percent", twoDecimals(status.weeklyUtilization)))
        headers.append(("x-codex-secondary-window-minutes", "10080"))
        if let reset = status.weeklyReset { headers.append(("x-codex-secondary-reset-at", String(Int(reset.timeIntervalSince1970.rounded())))) }
        if status.planWeight > 0 { headers.append(("x-ocm-plan-weight", shortest(status.planWeight))) }
        return headers
    }

    /// `%.2f` without Foundation's formatter, which costs more than the rest of the rewrite.
    static func twoDecimals(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e12 else { return String(format: "%.2f", value) }
        let hundredths = Int((abs(value) * 100).rounded())
        let fraction = hundredths % 100
        return "\(value < 0 && hundredths > 0 ? "-" : "")\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func shortest(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
