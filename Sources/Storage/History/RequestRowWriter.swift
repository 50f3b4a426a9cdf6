import GRDB
import GRDBSQLite

/// Writes request rows through the prepared insert with SQLite's own binding calls. GRDB's
/// `execute(arguments:)` boxes each of the 19 values into an array of existentials and checks them
/// against the statement per row, which cost more than SQLite's insert itself; a batch of rows is
/// the history's hottest write (one row per request).
struct RequestRowWriter {
    private let statement: SQLiteStatement
    private let database: Database

    init(_ statement: Statement, in database: Database) {
        self.statement = statement.sqliteStatement
        self.database = database
    }

    func insert(_ record: RequestRecord) throws {
        // A statement GRDB used last, or a failed step before, may hold state: start clean.
        sqlite3_reset(statement)
        var index: Int32 = 0
        func next() -> Int32 {
            index += 1
            return index
        }
        try bind(record.time, next())
        try bind(record.requestID, next())
        try bind(record.user, next())
        try bind(record.credential, next())
        try bind(record.connectorCredential, next())
        try bind(record.model, next())
        try bind(record.transport, next())
        try bind(record.route, next())
        try bind(record.outcome, next())
        try bind(record.status, next())
        try bind(record.timeToFirstByteMilliseconds, next())
        try bind(record.durationMilliseconds, next())
        try bind(record.inputTokens, next())
        try bind(record.cachedInputTokens, next())
        try bind(record.outputTokens, next())
        try bind(record.reasoningTokens, next())
        try bind(record.costUSD, next())
        try bind(record.failovers, next())
        try bind(record.error, next())
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard code == SQLITE_DONE else { throw failure(code) }
    }

    private func bind(_ value: String?, _ index: Int32) throws {
        guard let value else { return try check(sqlite3_bind_null(statement, index)) }
        var text = value
        // SQLite copies the bytes (the transient destructor), so they need not outlive the call.
        try text.withUTF8 { bytes in
            guard let start = bytes.baseAddress, !bytes.isEmpty else { return try check(sqlite3_bind_text(statement, index, "", 0, Self.transient)) }
            try check(sqlite3_bind_text(statement, index, UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self), Int32(bytes.count), Self.transient))
        }
    }

    private func bind(_ value: Int?, _ index: Int32) throws {
        guard let value else { return try check(sqlite3_bind_null(statement, index)) }
        try check(sqlite3_bind_int64(statement, index, Int64(value)))
    }

    private func bind(_ value: Double?, _ index: Int32) throws {
        guard let value else { return try check(sqlite3_bind_null(statement, index)) }
        try check(sqlite3_bind_double(statement, index, value))
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else { throw failure(code) }
    }

    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: database.lastErrorMessage, sql: HistoryStore.insertRequest)
    }

    /// `SQLITE_TRANSIENT`, which Swift does not import (a macro casting -1 to a function pointer).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
