import Foundation
import GRDB
import PoolCore
@testable import Storage
import Synchronization
import Testing

/// The history against a real SQLite file.
@Suite(.timeLimit(.minutes(1))) struct HistoryStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    static func record(_ user: String, credential: String = "a", outcome: String = "completed", at time: Date = t0, ttfb: Double? = 100,
                       input: Int = 100, cost: Double = 0.01) -> RequestRecord {
        RequestRecord(time: time, requestID: UUID().uuidString, user: user, credential: credential, model: "gpt-5.5", transport: "http",
                      route: "responses", outcome: outcome, status: outcome == "completed" ? 200 : 500, timeToFirstByteMilliseconds: ttfb,
                      durationMilliseconds: (ttfb ?? 0) + 50, inputTokens: input, cachedInputTokens: input / 2, outputTokens: 10,
                      reasoningTokens: 3, costUSD: cost)
    }

    @Test func aNewFileIsPrivateMigratedAndKeepsEverythingAcrossARestart() throws {
        let folder = try folder().appendingPathComponent("state")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let path = folder.appendingPathComponent("codexpool.sqlite3").path
        do {
            let store = try HistoryStore(path: path)
            #expect(try store.appliedMigrations() == ["v1 requests", "v2 metrics and admin state", "v3 usage ledger"])
            try store.insert([Self.record("alice"), Self.record("bob", outcome: "upstream_error", ttfb: nil)])
            try store.setCredential("a", disabled: true, at: Self.t0)
            try store.insertSamples([MetricSample(metric: .requests, time: Self.t0.timeIntervalSince1970, value: 2)])
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let folderAttributes = try FileManager.default.attributesOfItem(atPath: folder.path)
        #expect((folderAttributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)

        let reopened = try HistoryStore(path: path)
        let rows = try reopened.requests(.init())
        #expect(rows.map(\.user) == ["bob", "alice"], "newest first")
        #expect(try reopened.disabledCredentials() == ["a"])
        #expect(try reopened.series(.requests, step: .fiveSeconds, since: Self.t0, until: Self.t0 + 5).map(\.value) == [2])
        let overview = try reopened.overview(since: Self.t0 - 1, until: Self.t0 + 1, user: nil)
        #expect(overview.requests == 2 && overview.failures == 1)
        #expect(overview.outcomes == ["completed": 1, "upstream_error": 1])
        #expect(overview.tokens == TokenCounts(input: 200, cachedInput: 100, output: 20, reasoning: 6))
        #expect(overview.timeToFirstByte.p50 == 100)
    }

    @Test func everyColumnOfARowComesBackAsWritten() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try HistoryStore(path: folder.appendingPathComponent("h.sqlite3").path)
        let full = RequestRecord(time: Self.t0 + 0.25, requestID: "req-ü-1", user: "ålice 🐙", credential: "a", connectorCredential: "home",
                                 model: "gpt-5.5", transport: "websocket", route: "responses", outcome: "upstream_error", status: 502,
                                 timeToFirstByteMilliseconds: 12.5, durationMilliseconds: 99.75, inputTokens: Int(Int32.max) + 7,
                                 cachedInputTokens: 3, outputTokens: 4, reasoningTokens: 5, costUSD: 0.125, failovers: 2, error: "bad \"gateway\"")
        let sparse = RequestRecord(time: Self.t0, requestID: "", user: "", credential: nil, model: nil, transport: "http", route: "",
                                   outcome: "rejected", status: nil, timeToFirstByteMilliseconds: nil, durationMilliseconds: 0)
        try store.insert([full, sparse])
        let rows = try store.requests(.init())
        #expect(rows.count == 2)
        var expected = [sparse, full]
        for index in expected.indices { expected[index].id = rows[index].id }
        #expect(rows == expected)
    }

    @Test func aRowSQLiteRefusesFailsItsBatchAndTheNextBatchIsWritten() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try HistoryStore(path: folder.appendingPathComponent("h.sqlite3").path)
        try store.database.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON requests WHEN NEW.user = 'refused' BEGIN SELECT RAISE(ABORT, 'refused by test'); END")
        }
        #expect { try store.insert([Self.record("alice"), Self.record("refused")]) } throws: { error in
            "\(error)".contains("refused by test")
        }
        #expect(try store.requests(.init()).isEmpty, "the batch is one transaction")
        try store.insert([Self.record("bob")])
        #expect(try store.requests(.init()).map(\.user) == ["bob"])
    }

    @Test func aFileFromThePreviousVersionIsBroughtForward() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("old.sqlite3").path
        do {
            let old = try DatabasePool(path: path)
            try HistoryMigrations.migrator.migrate(old, upTo: "v1 requests")
            try old.write { db in
                var row = Self.record("carol")
                try row.insert(db)
            }
        }
        let store = try HistoryStore(path: path)
        #expect(try store.appliedMigrations().count == 3)
        #expect(try store.requests(.init()).map(\.user) == ["carol"])
        try store.setCredential("b", disabled: true, at: Self.t0)
        #expect(try store.disabledCredentials() == ["b"])
    }

    @Test func theUsageLedgerAddsUpPerUserAndDayAndIsPrunedByDay() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try HistoryStore(path: folder.appendingPathComponent("ledger.sqlite3").path)
        let day = CalendarWindow.dayNumber(Self.t0)
        try store.insert([Self.record("bob")], ledger: [UsageLedgerEntry(user: "bob", day: day, use: UserUse(requests: 1, tokens: 128, costUSD: 0.25))])
        try store.addToLedger([UsageLedgerEntry(user: "bob", day: day, use: UserUse(requests: 1, tokens: 72, costUSD: 0.5)),
                               UsageLedgerEntry(user: "bob", day: day - 40, use: UserUse(requests: 7)),
                               UsageLedgerEntry(user: "amy", day: day, use: UserUse(requests: 2)),
                               // The same user and day again in one batch: added to the first.
                               UsageLedgerEntry(user: "bob", day: day, use: UserUse(requests: 3, tokens: 8))])
        #expect(try store.requests(.init()).count == 1, "the row and its ledger entry went in together")
        let entries = try store.ledger(fromDay: day - 1)
        #expect(entries == [UsageLedgerEntry(user: "amy", day: day, use: UserUse(requests: 2)),
                            UsageLedgerEntry(user: "bob", day: day, use: UserUse(requests: 5, tokens: 208, costUSD: 0.75))])
        try store.pruneLedger(beforeDay: day - 32)
        #expect(try store.ledger(fromDay: 0).count == 2)
    }

    @Test func queriesFilterPageAndGroup() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try HistoryStore(path: folder.appendingPathComponent("h.sqlite3").path)
        try store.insert((0..<10).map { Self.record($0 % 2 == 0 ? "alice" : "bob", credential: $0 < 5 ? "a" : "b", at: Self.t0 + Double($0)) })
        let page = try store.requests(.init(limit: 3))
        #expect(page.count == 3)
        let next = try store.requests(.init(limit: 3, before: page.last?.id))
        #expect(Set(page.compactMap(\.id)).isDisjoint(with: next.compactMap(\.id)))
        #expect(next.first?.id.map { $0 < (page.last?.id ?? 0) } == true)
        #expect(try store.requests(.init(user: "alice")).allSatisfy { $0.user == "alice" })
        #expect(try store.requests(.init(credential: "b")).count == 5)
        let byUser = try store.usage(groupBy: .user, since: Self.t0, until: Self.t0 + 60, user: nil)
        #expect(byUser.map(\.key).sorted() == ["alice", "bob"])
        #expect(byUser.allSatisfy { $0.requests == 5 && $0.tokens.input == 500 && abs($0.costUSD - 0.05) < 1e-9 })
        #expect(try store.usage(groupBy: .credential, since: Self.t0, until: Self.t0 + 60, user: "alice").map(\.requests).reduce(0, +) == 5)
    }

    @Test func samplesAreDownsampledAndEverythingExpiresOnTime() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try HistoryStore(path: folder.appendingPathComponent("h.sqlite3").path)
        let start = (Self.t0.timeIntervalSince1970 / 60).rounded(.down) * 60
        // Two minutes of 5-second samples: 1 request each, in-flight alternating 2 and 4.
        var samples: [MetricSample] = []
        for index in 0..<24 {
            let time = start + Double(index * 5)
            samples.append(MetricSample(metric: .requests, time: time, value: 1))
            samples.append(MetricSample(metric: .inFlight, time: time, value: index % 2 == 0 ? 2 : 4))
        }
        try store.insertSamples(samples)
        try store.insert([Self.record("old", at: Date(timeIntervalSince1970: start))])
        let now = Date(timeIntervalSince1970: start + 150)
        try store.maintain(now: now, requestRetention: 86_400, detailRetention: 86_400, summaryRetention: 30 * 86_400)
        try store.maintain(now: now, requestRetention: 86_400, detailRetention: 86_400, summaryRetention: 30 * 86_400)
        let minutes = try store.series(.requests, step: .minute, since: Date(timeIntervalSince1970: start), until: now)
        #expect(minutes.map(\.value) == [12, 12], "counts add up, once")
        #expect(try store.series(.inFlight, step: .minute, since: Date(timeIntervalSince1970: start), until: now).map(\.value) == [3, 3], "levels average")
        // A day later the 5-second samples are gone, the minutes stay; the request too (kept 2 days here).
        let dayLater = now + 86_400 + 60
        try store.maintain(now: dayLater, requestRetention: 2 * 86_400, detailRetention: 86_400, summaryRetention: 30 * 86_400)
        #expect(try store.series(.requests, step: .fiveSeconds, since: Date(timeIntervalSince1970: start), until: dayLater).isEmpty)
        #expect(try store.series(.requests, step: .minute, since: Date(timeIntervalSince1970: start), until: dayLater).count == 2)
        #expect(try store.requests(.init()).count == 1)
        try store.maintain(now: dayLater + 2 * 86_400, requestRetention: 2 * 86_400, detailRetention: 86_400, summaryRetention: 30 * 86_400)
        #expect(try store.requests(.init()).isEmpty)
    }

    @Test func aFailingDiskIsReportedAndNothingElseHappens() throws {
        let folder = try folder()
        defer {
            try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder.path)
            try? FileManager.default.removeItem(at: folder)
        }
        let path = folder.appendingPathComponent("h.sqlite3").path
        let store = try HistoryStore(path: path)
        let failures = Mutex<[String]>([])
        let recorder = HistoryRecorder(store: store, batchDelay: .milliseconds(1)) { message in failures.withLock { $0.append(message) } }
        recorder.record(Self.record("alice"))
        recorder.flush()
        #expect(try store.requests(.init()).count == 1)
        // The database becomes unusable under it (as when its disk goes away).
        try store.database.close()
        recorder.record(Self.record("bob"))
        recorder.flush()
        #expect(failures.withLock { $0.count } == 1)
        #expect(failures.withLock { $0.first?.contains("history write of 1 requests failed") } == true)
        // A store that cannot be opened says why.
        #expect(throws: HistoryStore.Failure.self) { try HistoryStore(path: "/proc/codexpool-cannot-be-here/h.sqlite3") }
    }
}
