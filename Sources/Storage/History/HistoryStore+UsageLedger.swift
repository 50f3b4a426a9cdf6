import Foundation
public import PoolCore
import GRDB

/// One addition to a user's day in the usage ledger.
public struct UsageLedgerEntry: Hashable, Sendable {
    public var user: String
    /// Days since 1970-01-01, UTC.
    public var day: Int
    public var use: UserUse

    public init(user: String, day: Int, use: UserUse) {
        self.user = user
        self.day = day
        self.use = use
    }
}

/// The usage ledger: each user's requests, tokens and cost per UTC day, kept beside the request
/// log (whose retention may be shorter than a month) so that limits survive restarts.
extension HistoryStore {
    public func addToLedger(_ entries: [UsageLedgerEntry]) throws {
        guard !entries.isEmpty else { return }
        try database.write { db in try Self.addToLedger(entries, db) }
    }

    static func addToLedger(_ entries: [UsageLedgerEntry], _ db: Database) throws {
        // A batch holds many requests of the same users on the same day: one upsert each, from
        // one prepared statement (preparing it per request cost more than the rest of its row).
        var merged: [UsageLedgerEntry] = []
        var positions: [Pair: Int] = [:]
        for entry in entries {
            let pair = Pair(user: entry.user, day: entry.day)
            if let position = positions[pair] {
                merged[position].use = merged[position].use + entry.use
            } else {
                positions[pair] = merged.count
                merged.append(entry)
            }
        }
        let statement = try db.cachedStatement(sql: """
            INSERT INTO user_usage_daily (user, day, requests, tokens, cost_usd) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (user, day) DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens,
                cost_usd = cost_usd + excluded.cost_usd
            """)
        for entry in merged {
            try statement.execute(arguments: [entry.user, entry.day, entry.use.requests, entry.use.tokens, entry.use.costUSD])
        }
    }

    private struct Pair: Hashable {
        var user: String
        var day: Int
    }

    /// Every user's days from `firstDay` on.
    public func ledger(fromDay firstDay: Int) throws -> [UsageLedgerEntry] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT user, day, requests, tokens, cost_usd FROM user_usage_daily WHERE day >= ? ORDER BY user, day",
                             arguments: [firstDay]).map { row in
                UsageLedgerEntry(user: row["user"], day: row["day"], use: UserUse(requests: row["requests"], tokens: row["tokens"], costUSD: row["cost_usd"]))
            }
        }
    }

    /// Drops days before `firstDay`.
    public func pruneLedger(beforeDay firstDay: Int) throws {
        try database.write { db in try db.execute(sql: "DELETE FROM user_usage_daily WHERE day < ?", arguments: [firstDay]) }
    }
}
