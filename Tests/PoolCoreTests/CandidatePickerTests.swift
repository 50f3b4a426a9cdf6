import Foundation
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct CandidatePickerTests {
    /// Scenario 17: remaining × weight × 168 / hours-until-reset, computed by hand.
    @Test("Scenario 17: remaining × weight × 168 / hours-until-reset, computed by hand") func leastUsedScoreByHand() {
        let a = credential("a", plan: "plus", weekly: 10, weeklyResetIn: 150 * hour)
        let b = credential("b", plan: "pro", weekly: 70, weeklyResetIn: 150 * hour)
        #expect(abs(CandidatePicker.leastUsedScore(a, now: t0) - 89 * 1 * 168 / 150) < 1e-9)      // 99.68
        #expect(abs(CandidatePicker.leastUsedScore(b, now: t0) - 29 * 10 * 168 / 150) < 1e-9)     // 324.8
        #expect(CandidatePicker.leastUsed([a, b], now: t0)?.tag == "b")

        let soon = credential("b", plan: "pro", weekly: 70, weeklyResetIn: 2 * hour)
        #expect(abs(CandidatePicker.leastUsedScore(soon, now: t0) - 29 * 10 * 84) < 1e-9)         // 24360
        let verySoon = credential("b", plan: "pro", weekly: 70, weeklyResetIn: 600)
        #expect(abs(CandidatePicker.leastUsedScore(verySoon, now: t0) - 29 * 10 * 168) < 1e-9, "under an hour counts as one hour")
        let unknownReset = credential("c", plan: "plus", weekly: 20)
        #expect(CandidatePicker.leastUsedScore(unknownReset, now: t0) == 79)
    }

    @Test func tiesGoToTheFirstInOrder() {
        let a = credential("a", weekly: 30), b = credential("b", weekly: 30)
        #expect(CandidatePicker.leastUsed([a, b], now: t0)?.tag == "a")
        #expect(CandidatePicker.leastUsed([b, a], now: t0)?.tag == "b")
        #expect(CandidatePicker.leastUsed([], now: t0) == nil)
    }

    @Test func capsShapeTheScore() {
        let limited = credential("a", weekly: 40, caps: UsageCaps(weekly: .limit(50)))
        #expect(CandidatePicker.leastUsedScore(limited, now: t0) == 10)
        let external = credential("e", kind: .externalReceiver, weekly: 40)
        #expect(CandidatePicker.leastUsedScore(external, now: t0) == 600, "(100 − 40) × default peer weight 10")
    }
}

@Suite(.timeLimit(.minutes(1))) struct SessionTableTests {
    let key = SessionTable.Key(sessionID: "s", scope: .all)

    /// Stickiness lasts 24 h after the last use, not after creation.
    @Test func lifetimeSlidesWithUse() {
        var table = SessionTable()
        table.assign(key, to: "a", now: t0)
        #expect(table.lookup(key, now: t0 + 20 * hour) == "a")
        #expect(table.lookup(key, now: t0 + 40 * hour) == "a")
        #expect(table.lookup(key, now: t0 + 64 * hour) == nil)
        #expect(table.count == 0)
    }

    @Test func scopesAreSeparate() {
        var table = SessionTable()
        table.assign(key, to: "a", now: t0)
        #expect(table.lookup(SessionTable.Key(sessionID: "s", scope: .nonExternal), now: t0) == nil)
    }

    @Test func memoryIsBoundedByDroppingTheLeastRecentlyUsed() {
        var table = SessionTable(capacity: 100)
        for index in 0..<1000 {
            table.assign(SessionTable.Key(sessionID: "s\(index)", scope: .all), to: "a", now: t0 + Double(index))
        }
        #expect(table.count <= 100)
        #expect(table.lookup(SessionTable.Key(sessionID: "s999", scope: .all), now: t0 + 1000) == "a")
        #expect(table.lookup(SessionTable.Key(sessionID: "s0", scope: .all), now: t0 + 1000) == nil)
    }

    @Test func purgeAndRemoveAll() {
        var table = SessionTable()
        table.assign(key, to: "a", now: t0)
        table.assign(SessionTable.Key(sessionID: "t", scope: .all), to: "a", now: t0 + 10 * hour)
        table.assign(SessionTable.Key(sessionID: "u", scope: .nonExternal), to: "a", now: t0 + 10 * hour)
        table.purgeExpired(now: t0 + 25 * hour)
        #expect(table.count == 2)
        #expect(table.removeAll(on: "a", scope: .all) == 1)
        #expect(table.countsByTag(now: t0 + 25 * hour) == ["a": 1])
    }
}
