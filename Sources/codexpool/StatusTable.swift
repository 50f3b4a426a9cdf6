import Foundation
import PoolCore

/// The pool as a table for a terminal: one row per credential with its plan, both windows' use
/// as bars with their reset countdowns, sessions, and whether it can serve (or why not).
enum StatusTable {
    static func render(_ status: OperatorStatus, title: String, now: Date) -> String {
        let nowSeconds = Int(now.timeIntervalSince1970)
        var lines = [
            "\(title) — pool: 5h \(percent(status.five_hour_utilization)) used (resets \(countdown(status.five_hour_reset, now: nowSeconds))), "
                + "weekly \(percent(status.weekly_utilization)) (resets \(countdown(status.weekly_reset, now: nowSeconds))), plan weight \(number(status.plan_weight))",
        ]
        let header = ["CREDENTIAL", "KIND", "PLAN", "5H USE", "RESETS", "WEEKLY USE", "RESETS", "SESSIONS", "STATE"]
        var rows = [header]
        for credential in status.credentials {
            rows.append([
                credential.tag,
                credential.kind,
                // A peer's pool has no single plan, only its total weight.
                "\(credential.plan_type ?? "pool") ×\(number(credential.plan_weight))",
                credential.five_hour.map { "\(bar($0.used_percent)) \(percent($0.used_percent))" } ?? "no data",
                credential.five_hour.map { countdown($0.resets_at ?? 0, now: nowSeconds) } ?? "",
                credential.weekly.map { "\(bar($0.used_percent)) \(percent($0.used_percent))" } ?? "no data",
                credential.weekly.map { countdown($0.resets_at ?? 0, now: nowSeconds) } ?? "",
                String(credential.sessions),
                state(credential, now: nowSeconds),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            lines.append(cells.joined(separator: "  "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Ten cells, each a tenth of the window.
    static func bar(_ usedPercent: Double) -> String {
        let filled = max(0, min(10, Int((usedPercent / 10).rounded())))
        return "[" + String(repeating: "█", count: filled) + String(repeating: "░", count: 10 - filled) + "]"
    }

    static func percent(_ value: Double) -> String {
        String(format: "%5.1f%%", value)
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    /// "in 4d 3h", "in 2h 10m", "in 5m 03s", "now"; "unknown" without a time.
    static func countdown(_ unixTime: Int, now: Int) -> String {
        guard unixTime > 0 else { return "unknown" }
        let left = unixTime - now
        return left > 0 ? "in " + span(left) : "now"
    }

    /// A positive number of seconds as "4d 3h", "2h 10m" or "5m 03s".
    private static func span(_ total: Int) -> String {
        let days = total / 86_400, hours = total % 86_400 / 3600, minutes = total % 3600 / 60, seconds = total % 60
        if days > 0 { return "\(days)d \(hours)h" }
        if hours > 0 { return "\(hours)h \(minutes)m" }
        return "\(minutes)m " + (seconds < 10 ? "0" : "") + "\(seconds)s"
    }

    private static func state(_ credential: OperatorStatus.Credential, now: Int) -> String {
        var parts: [String] = []
        if credential.usable {
            parts.append("ready")
        } else {
            parts.append(credential.unusable_reason ?? "unusable")
        }
        if let since = credential.unsaved_token_since {
            parts.append("REFRESHED TOKEN NOT SAVED for \(duration(now - since)) (lost on restart; fix the file's folder)")
        }
        if let tunnel = credential.tunnel {
            var text = tunnel.online ? "connector online for \(duration(now - tunnel.since))" : "connector offline for \(duration(now - tunnel.since))"
            if let rtt = tunnel.round_trip_ms { text += String(format: ", rtt %.1f ms", rtt) }
            if tunnel.disconnects > 0 { text += ", \(tunnel.disconnects) drop\(tunnel.disconnects == 1 ? "" : "s")" }
            // The reason already says the connector is offline; say it once.
            if !(credential.unusable_reason?.contains("connector offline") ?? false) || tunnel.online { parts.append(text) }
        }
        return parts.joined(separator: "; ")
    }

    private static func duration(_ seconds: Int) -> String {
        seconds > 0 ? span(seconds) : "0s"
    }
}
