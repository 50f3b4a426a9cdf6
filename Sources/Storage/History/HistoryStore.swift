public import Foundation
import GRDB

/// The history in one SQLite file (WAL): request rows, metric samples at two resolutions, and
/// admin state. Every call is synchronous and may block on the disk: callers keep it off event
/// loops (`HistoryRecorder` batches the writes).
public final class HistoryStore: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let database: DatabasePool
    public let path: String

    /// Opens (creating it, 0600 in a 0700 folder) and migrates the file at `path`.
    public init(path: String) throws {
        self.path = path
        do {
            try FileSystemCredentialStore.createPrivateFolder(holding: path)
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw Failure(description: "cannot create \(path)")
                }
            }
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            database = try DatabasePool(path: path, configuration: configuration)
            try HistoryMigrations.migrator.migrate(database)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot open the history at \(path): \(error)")
        }
        // The WAL and shared-memory files SQLite makes next to it hold the same data.
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path + suffix)
        }
    }

    /// Closes the file; every later call fails (and is reported by the recorder).
    public func close() throws {
        try database.close()
    }

    /// The applied migrations, oldest first.
    public func appliedMigrations() throws -> [String] {
        try database.read { try HistoryMigrations.migrator.appliedMigrations($0) }
    }

    // MARK: Requests

    /// Request rows, and what they add to the usage ledger, in one transaction.
    public func insert(_ records: [RequestRecord], ledger: [UsageLedgerEntry] = []) throws {
        guard !records.isEmpty || !ledger.isEmpty else { return }
        try database.write { db in
            var rows = RequestRowWriter(try db.cachedStatement(sql: Self.insertRequest), in: db)
            for record in records { try rows.insert(record) }
            try Self.addToLedger(ledger, db)
        }
    }

    static let insertRequest = """
        INSERT INTO requests (time, request_id, user, credential, connector_credential, model, transport, route, outcome, status, ttfb_ms,
            duration_ms, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, failovers, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// What `requests` lists: newest first, before a cursor (a row id), optionally filtered.
    public struct RequestQuery: Sendable {
        public var limit: Int
        public var before: Int64?
        public var user: String?
        public var credential: String?
        public var outcome: String?
        public var since: Date?

        public init(limit: Int = 50, before: Int64? = nil, user: String? = nil, credential: String? = nil, outcome: String? = nil, since: Date? = nil) {
            self.limit = limit
            self.before = before
            self.user = user
            self.credential = credential
            self.outcome = outcome
            self.since = since
        }
    }

    public func requests(_ query: RequestQuery) throws -> [RequestRecord] {
        try database.read { db in
            var request = RequestRecord.all()
            if let before = query.before { request = request.filter(RequestRecord.CodingKeys.id < before) }
            if let user = query.user { request = request.filter(RequestRecord.CodingKeys.user == user) }
            if let credential = query.credential { request = request.filter(RequestRecord.CodingKeys.credential == credential) }
            if let outcome = query.outcome { request = request.filter(RequestRecord.CodingKeys.outcome == outcome) }
            if let since = query.since { request = request.filter(RequestRecord.CodingKeys.time >= since.timeIntervalSince1970) }
            return try request.order(RequestRecord.CodingKeys.id.desc).limit(max(1, min(query.limit, 1000))).fetchAll(db)
        }
    }

    /// Totals over a period, optionally for one user.
    public func overview(since: Date, until: Date, user: String?) throws -> HistoryOverview {
        try database.read { db in
            let (filter, arguments) = Self.requestFilter(since: since, until: until, user: user)
            let totals = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS requests, COALESCE(SUM(outcome != 'completed'), 0) AS failures,
                       COALESCE(SUM(input_tokens), 0) AS input, COALESCE(SUM(cached_input_tokens), 0) AS cached,
                       COALESCE(SUM(output_tokens), 0) AS output, COALESCE(SUM(reasoning_tokens), 0) AS reasoning,
                       COALESCE(SUM(cost_usd), 0) AS cost, COALESCE(SUM(failovers), 0) AS failovers
                FROM requests WHERE \(filter)
                """, arguments: arguments)
            let outcomes = try Row.fetchAll(db, sql: "SELECT outcome, COUNT(*) AS count FROM requests WHERE \(filter) GROUP BY outcome", arguments: arguments)
            let firstBytes = try Double.fetchAll(db, sql: "SELECT ttfb_ms FROM requests WHERE \(filter) AND ttfb_ms IS NOT NULL ORDER BY ttfb_ms", arguments: arguments)
            let durations = try Double.fetchAll(db, sql: "SELECT duration_ms FROM requests WHERE \(filter) ORDER BY duration_ms", arguments: arguments)
            return HistoryOverview(
                requests: totals?["requests"] ?? 0, failures: totals?["failures"] ?? 0,
                outcomes: Dictionary(uniqueKeysWithValues: outcomes.map { ($0["outcome"] as String, $0["count"] as Int) }),
                tokens: TokenCounts(input: totals?["input"] ?? 0, cachedInput: totals?["cached"] ?? 0, output: totals?["output"] ?? 0,
                                    reasoning: totals?["reasoning"] ?? 0),
                costUSD: totals?["cost"] ?? 0, failovers: totals?["failovers"] ?? 0,
                timeToFirstByte: Percentiles(sorted: firstBytes), duration: Percentiles(sorted: durations))
        }
    }

    /// The `WHERE` condition of request rows in [since, until), of one user when given.
    private static func requestFilter(since: Date, until: Date, user: String?) -> (String, StatementArguments) {
        var arguments: StatementArguments = [since.timeIntervalSince1970, until.timeIntervalSince1970]
        guard let user else { return ("time >= ? AND time < ?", arguments) }
        arguments += [user]
        return ("time >= ? AND time < ? AND user = ?", arguments)
    }

    public enum UsageGrouping: String, Sendable, CaseIterable {
        case user, credential, model
    }

    /// Tokens, cost and counts per user, credential or model over a period.
    public func usage(groupBy grouping: UsageGrouping, since: Date, until: Date, user: String?) throws -> [UsageRow] {
        try database.read { db in
            let (filter, arguments) = Self.requestFilter(since: since, until: until, user: user)
            let column = grouping.rawValue
            return try Row.fetchAll(db, sql: """
                SELECT COALESCE(\(column), '') AS key, COUNT(*) AS requests, SUM(outcome != 'completed') AS failures,
                       SUM(input_tokens) AS input, SUM(cached_input_tokens) AS cached, SUM(output_tokens) AS output,
                       SUM(reasoning_tokens) AS reasoning, SUM(cost_usd) AS cost
                FROM requests WHERE \(filter) GROUP BY key ORDER BY cost DESC, key
                """, arguments: arguments).map { row in
                UsageRow(key: row["key"], requests: row["requests"], failures: row["failures"],
                         tokens: TokenCounts(input: row["input"], cachedInput: row["cached"], output: row["output"], reasoning: row["reasoning"]),
                         costUSD: row["cost"])
            }
        }
    }

    // MARK: Admin state

    public func setCredential(_ tag: String, disabled: Bool, at time: Date) throws {
        try database.write { db in
            try db.execute(sql: "INSERT INTO credential_admin (tag, disabled, changed_at) VALUES (?, ?, ?) "
                + "ON CONFLICT(tag) DO UPDATE SET disabled = excluded.disabled, changed_at = excluded.changed_at",
                arguments: [tag, disabled, time.timeIntervalSince1970])
        }
    }

    public func disabledCredentials() throws -> Set<String> {
        try database.read { db in Set(try String.fetchAll(db, sql: "SELECT tag FROM credential_admin WHERE disabled")) }
    }
}

public struct TokenCounts: Hashable, Sendable, Codable {
    public var input: Int
    public var cachedInput: Int
    public var output: Int
    public var reasoning: Int

    public init(input: Int = 0, cachedInput: Int = 0, output: Int = 0, reasoning: Int = 0) {
        self.input = input
        self.cachedInput = cachedInput
        self.output = output
        self.reasoning = reasoning
    }
}

/// p50/p95/p99 of a sorted list (nearest rank); nil values when it is empty.
public struct Percentiles: Hashable, Sendable {
    public var p50: Double?
    public var p95: Double?
    public var p99: Double?

    public init(sorted values: [Double]) {
        func rank(_ fraction: Double) -> Double? {
            guard !values.isEmpty else { return nil }
            return values[min(values.count - 1, max(0, Int((fraction * Double(values.count)).rounded(.up)) - 1))]
        }
        p50 = rank(0.5)
        p95 = rank(0.95)
        p99 = rank(0.99)
    }
}

public struct HistoryOverview: Hashable, Sendable {
    public var requests: Int
    public var failures: Int
    public var outcomes: [String: Int]
    public var tokens: TokenCounts
    public var costUSD: Double
    public var failovers: Int
    public var timeToFirstByte: Percentiles
    public var duration: Percentiles
}

public struct UsageRow: Hashable, Sendable {
    public var key: String
    public var requests: Int
    public var failures: Int
    public var tokens: TokenCounts
    public var costUSD: Double
}
