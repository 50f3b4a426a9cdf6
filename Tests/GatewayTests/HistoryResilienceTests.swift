import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import PoolCore
import Storage
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// History is a convenience: a disk that cannot take it costs history, never a request. And the
/// live event stream shows each finished request to those allowed to see it.
@Suite(.timeLimit(.minutes(1))) struct HistoryResilienceTests {
    static let ops = GatewayTestBed.User(name: "ops", token: "ops-token-0002", credential: "pool", isAdmin: true)
    static let alice = GatewayTestBed.User(name: "alice", token: "alice-token-0002", credential: "pool")
    static let bob = GatewayTestBed.User(name: "bob", token: "bob-token-0002", credential: "pool")

    @Test func aReadOnlyStateFolderCostsHistoryNotRequests() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-readonly-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try ReadOnlyFolder.make(folder)
        defer {
            ReadOnlyFolder.restore(folder)
            try? FileManager.default.removeItem(at: folder)
        }
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.ops],
                                                 storage: StorageConfiguration(enabled: true, path: folder.appendingPathComponent("h.sqlite3").path))
        try await bed.stopAfter { () async throws in
            #expect(bed.runtime.history == nil)
            let turn = try await bed.request(headers: [("authorization", "Bearer \(Self.ops.token)")], json: GatewayTestBed.turnBody)
            #expect(turn.status == 200)
            let metrics = try PrometheusText(try await bed.request(.GET, "/metrics").text)
            #expect((metrics.value("codexpool_history_write_failures_total") ?? 0) >= 1)
            #expect(try await bed.request(.GET, "/api/v1/overview", headers: [("authorization", "Bearer \(Self.ops.token)")]).status == 503)
        }
    }

    @Test func aStoreThatBreaksUnderwayCostsHistoryNotRequests() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-broken-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.ops],
                                                 storage: StorageConfiguration(enabled: true, path: folder.appendingPathComponent("h.sqlite3").path))
        try await bed.stopAfter { () async throws in
            let history = try #require(bed.runtime.history)
            try history.recorder.store.close()
            for _ in 0..<3 {
                #expect(try await bed.request(headers: [("authorization", "Bearer \(Self.ops.token)")], json: GatewayTestBed.turnBody).status == 200)
            }
            history.recorder.flush()
            let metrics = try PrometheusText(try await bed.request(.GET, "/metrics").text)
            #expect((metrics.value("codexpool_history_write_failures_total") ?? 0) >= 1)
        }
    }

    @Test func aRequestRefusedForItsSizeIsRecordedAsRejected() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-rejected-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var limits = GatewayTestBed.patientLimits
        limits.maxBody = 1024
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.alice], limits: limits,
                                                 storage: StorageConfiguration(enabled: true, path: folder.appendingPathComponent("h.sqlite3").path))
        try await bed.stopAfter { () async throws in
            let big = #"{"model":"gpt-5.5","input":""# + String(repeating: "x", count: 2048) + #""}"#
            let refused = try await bed.request(headers: [("authorization", "Bearer \(Self.alice.token)")], json: big)
            #expect(refused.status == 413)
            let history = try #require(bed.runtime.history)
            history.recorder.flush()
            let row = try #require(try history.recorder.store.requests(.init()).first)
            #expect(row.user == "alice" && row.outcome == "rejected" && row.status == 413 && row.route == "responses" && row.credential == nil)
        }
    }

    @Test func theEventStreamShowsEachFinishedRequestToThoseAllowedToSeeIt() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [Self.ops, Self.alice, Self.bob])
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["a"])
            let admin = try await EventStreamClient.open(bed, token: Self.ops.token)
            let alice = try await EventStreamClient.open(bed, token: Self.alice.token)
            defer {
                admin.close()
                alice.close()
            }
            // Both get a snapshot at once.
            #expect(await admin.next("snapshot")?.contains("\"tag\":\"a\"") == true)
            #expect(await alice.next("snapshot") != nil)
            _ = try await bed.request(headers: [("authorization", "Bearer \(Self.bob.token)")], json: GatewayTestBed.turnBody)
            _ = try await bed.request(headers: [("authorization", "Bearer \(Self.alice.token)")], json: GatewayTestBed.turnBody)
            let first = await admin.next("request")
            let second = await admin.next("request")
            #expect(first?.contains("\"user\":\"bob\"") == true && second?.contains("\"user\":\"alice\"") == true)
            // Alice's stream carries her request only.
            let hers = await alice.next("request")
            #expect(hers?.contains("\"user\":\"alice\"") == true, "\(hers ?? "nothing")")
            #expect(hers?.contains("alice-token") == false)
        }
    }
}

/// A client of `GET /api/v1/events` that hands out the data of each event in order.
final class EventStreamClient: Sendable {
    private let lines: StreamedLines

    private init(lines: StreamedLines) {
        self.lines = lines
    }

    static func open(_ bed: GatewayTestBed, token: String) async throws -> EventStreamClient {
        EventStreamClient(lines: try await StreamedLines(port: bed.server.port, path: "/api/v1/events", headers: [("Authorization", "Bearer \(token)")]))
    }

    /// The data of the next event named `name` (others are passed over); nil when the stream ends.
    func next(_ name: String) async -> String? {
        var lastEvent = ""
        while let line = await lines.next() {
            if line.hasPrefix("event: ") { lastEvent = String(line.dropFirst(7)) }
            if line.hasPrefix("data: "), lastEvent == name { return String(line.dropFirst(6)) }
        }
        return nil
    }

    func close() { lines.close() }
}
