import GRDB

/// The history's schema, one migration per version. A migration is never edited once released:
/// a file written by an older codexpool is brought forward by the ones after it.
enum HistoryMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 requests") { db in
            try db.create(table: "requests") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("time", .double).notNull().indexed()
                table.column("request_id", .text).notNull()
                table.column("user", .text).notNull()
                table.column("credential", .text)
                table.column("connector_credential", .text)
                table.column("model", .text)
                table.column("transport", .text).notNull()
                table.column("route", .text).notNull()
                table.column("outcome", .text).notNull()
                table.column("status", .integer)
                table.column("ttfb_ms", .double)
                table.column("duration_ms", .double).notNull()
                table.column("input_tokens", .integer).notNull().defaults(to: 0)
                table.column("cached_input_tokens", .integer).notNull().defaults(to: 0)
                table.column("output_tokens", .integer).notNull().defaults(to: 0)
                table.column("reasoning_tokens", .integer).notNull().defaults(to: 0)
                table.column("cost_usd", .double).notNull().defaults(to: 0)
                table.column("failovers", .integer).notNull().defaults(to: 0)
                table.column("error", .text)
            }
        }
        migrator.registerMigration("v2 metrics and admin state") { db in
            // One table per resolution: 5-second samples (kept a day) and 1-minute ones (a month).
            for table in ["metric_samples_5s", "metric_samples_1m"] {
                try db.create(table: table) { definition in
                    definition.column("time", .double).notNull()
                    definition.column("metric", .text).notNull()
                    definition.column("value", .double).notNull()
                    definition.primaryKey(["metric", "time"])
                }
            }
            try db.create(table: "credential_admin") { table in
                table.column("tag", .text).primaryKey()
                table.column("disabled", .boolean).notNull()
                table.column("changed_at", .double).notNull()
            }
            try db.create(index: "requests_user_time", on: "requests", columns: ["user", "time"])
            try db.create(index: "requests_credential_time", on: "requests", columns: ["credential", "time"])
        }
        migrator.registerMigration("v3 usage ledger") { db in
            // Per user and UTC day (days since 1970-01-01): what per-user limits count.
            try db.create(table: "user_usage_daily") { table in
                table.column("user", .text).notNull()
                table.column("day", .integer).notNull()
                table.column("requests", .integer).notNull().defaults(to: 0)
                table.column("tokens", .integer).notNull().defaults(to: 0)
                table.column("cost_usd", .double).notNull().defaults(to: 0)
                table.primaryKey(["user", "day"])
            }
        }
        return migrator
    }
}
