import GRDB
import GRDBSQLite

/// Writes request rows through the prepared insert with SQLite's own binding calls. GRDB's
/// `execute(arguments:)` boxes each of the 19 values into an array of existentials and checks them
/// against the statement per row, which cost more than SQLite's insert itself; a batch of rows is
/// the history's hottest write (one row per request).
///
/// A row's text values are copied into one buffer, reused for every row of the batch, and bound
/// from there without SQLite copying them again (`SQLITE_STATIC`): binding each one as transient
/// made SQLite allocate and free a copy of every string of every row.
struct RequestRowWriter {
    private let statement: SQLiteStatement
    private let database: Database
    /// The text values of the row being written, one after another, and the row's values; both
    /// reused for every row of the batch.
    private var text: [UInt8] = []
    private var values: [Value] = []

    init(_ statement: Statement, in database: Database) {
        self.statement = statement.sqliteStatement
        self.database = database
        text.reserveCapacity(512)
        values.reserveCapacity(19)
    }

    /// One column's value; text as a range of `text`.
    private enum Value {
        case null
        case integer(Int64)
        case real(Double)
        case text(Range<Int>)
    }

    mutating func insert(_ record: RequestRecord) throws {
        text.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        add(record.time)
        add(record.requestID)
        add(record.user)
        add(record.credential)
        add(record.connectorCredential)
        add(record.model)
        add(record.transport)
        add(record.route)
        add(record.outcome)
        add(record.status)
        add(record.timeToFirstByteMilliseconds)
        add(record.durationMilliseconds)
        add(record.inputTokens)
        add(record.cachedInputTokens)
        add(record.outputTokens)
        add(record.reasoningTokens)
        add(record.costUSD)
        add(record.failovers)
        add(record.error)
        try text.withUnsafeBufferPointer { bytes in
            // A statement GRDB used last, or a failed step before, may hold state: start clean.
            sqlite3_reset(statement)
            // The bindings point into `text`: none may outlive this closure.
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            for (offset, value) in values.enumerated() { try bind(value, at: Int32(offset + 1), text: bytes) }
            let code = sqlite3_step(statement)
            guard code == SQLITE_DONE else { throw failure(code) }
        }
    }

    /// The next column's value, in the statement's order.
    private mutating func add(_ string: String?) {
        guard var string else { return values.append(.null) }
        let start = text.count
        string.withUTF8 { text.append(contentsOf: $0) }
        values.append(.text(start..<text.count))
    }

    private mutating func add(_ integer: Int?) {
        values.append(integer.map { .integer(Int64($0)) } ?? .null)
    }

    private mutating func add(_ real: Double?) {
        values.append(real.map { .real($0) } ?? .null)
    }

    private func bind(_ value: Value, at index: Int32, text bytes: UnsafeBufferPointer<UInt8>) throws {
        switch value {
        case .null:
            try check(sqlite3_bind_null(statement, index))
        case .integer(let integer):
            try check(sqlite3_bind_int64(statement, index, integer))
        case .real(let real):
            try check(sqlite3_bind_double(statement, index, real))
        case .text(let range):
            // An empty string is text too, not NULL (SQLite copies it: there are no bytes in `text` to point to).
            guard !range.isEmpty, let base = bytes.baseAddress else { return try check(sqlite3_bind_text(statement, index, "", 0, Self.transient)) }
            let start = UnsafeRawPointer(base + range.lowerBound).assumingMemoryBound(to: CChar.self)
            try check(sqlite3_bind_text(statement, index, start, Int32(range.count), Self.static))
        }
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else { throw failure(code) }
    }

    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: database.lastErrorMessage, sql: HistoryStore.insertRequest)
    }

    /// `SQLITE_STATIC` and `SQLITE_TRANSIENT`, which Swift does not import (macros casting 0 and -1
    /// to a function pointer): SQLite uses the bytes where they are until the binding changes, or
    /// copies them.
    private static let `static` = unsafeBitCast(0, to: sqlite3_destructor_type.self)
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
