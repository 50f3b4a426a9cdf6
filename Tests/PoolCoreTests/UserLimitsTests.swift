import Foundation
@testable import PoolCore
import Testing

/// Per-user limits: calendar windows in UTC, the ledger's boundary, resets, and open sessions.
@Suite(.timeLimit(.minutes(1))) struct UserLimitsTests {
    /// Wednesday 2026-12-09 13:30:00 UTC.
    static let wednesday = Date(timeIntervalSince1970: 1_796_823_000)

    static func utc(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text)!
    }

    @Test func windowsAreUTCCalendarDaysMondayWeeksAndMonths() {
        let now = Self.wednesday
        #expect(ISO8601DateFormatter().string(from: now) == "2026-12-09T13:30:00Z")
        #expect(CalendarWindow.day.end(containing: now) == Self.utc("2026-12-10T00:00:00Z"))
        #expect(CalendarWindow.week.end(containing: now) == Self.utc("2026-12-14T00:00:00Z"))
        #expect(CalendarWindow.month.end(containing: now) == Self.utc("2027-01-01T00:00:00Z"))
        #expect(CalendarWindow.week.firstDay(containing: now) == CalendarWindow.dayNumber(Self.utc("2026-12-07T00:00:00Z")))
        // A Monday starts its own week; a Sunday belongs to the week before.
        let monday = Self.utc("2026-12-14T00:00:00Z")
        #expect(CalendarWindow.week.firstDay(containing: monday) == CalendarWindow.dayNumber(monday))
        #expect(CalendarWindow.week.end(containing: Self.utc("2026-12-13T23:59:59Z")) == monday)
        #expect(CalendarWindow.month.end(containing: Self.utc("2027-02-28T23:00:00Z")) == Self.utc("2027-03-01T00:00:00Z"))
        #expect(CalendarWindow.month.firstDay(containing: Self.utc("2027-01-01T00:00:00Z")) == CalendarWindow.dayNumber(Self.utc("2027-01-01T00:00:00Z")))
    }

    @Test(arguments: UserLimitKind.allCases)
    func eachLimitIsReachedExactlyAtItsValueAndResetsAtItsWindowsEnd(kind: UserLimitKind) {
        let unit = UserUse(requests: 1, tokens: 128, costUSD: 0.25)
        var limits = UserLimits()
        let value = 2 * kind.measure(unit)
        switch kind {
        case .requestsPerDay: limits.requestsPerDay = Int(value)
        case .tokensPerDay: limits.tokensPerDay = Int(value)
        case .tokensPerWeek: limits.tokensPerWeek = Int(value)
        case .costPerDay: limits.costPerDay = value
        case .costPerWeek: limits.costPerWeek = value
        case .costPerMonth: limits.costPerMonth = value
        }
        var ledger = UserUsageLedger()
        let now = Self.wednesday
        ledger.add(unit, user: "bob", at: now)
        #expect(ledger.refusal("bob", limits: limits, now: now) == nil, "one of two used")
        ledger.add(unit, user: "bob", at: now)
        let refusal = ledger.refusal("bob", limits: limits, now: now)
        #expect(refusal?.limit == .use(kind))
        #expect(refusal?.used == value)
        #expect(refusal?.value == value)
        let end = kind.window.end(containing: now)
        #expect(refusal?.resetsAt == end)
        #expect(ledger.refusal("alice", limits: limits, now: now) == nil, "another user's use is theirs")
        #expect(ledger.refusal("bob", limits: limits, now: end - 1) != nil, "still in the window a second before its end")
        #expect(ledger.refusal("bob", limits: limits, now: end) == nil, "a new window starts empty")
    }

    @Test func theRefusalNamesTheLimitThatFreesUpLastAndSaysSo() {
        var ledger = UserUsageLedger()
        ledger.add(UserUse(requests: 3, tokens: 1000, costUSD: 12.5), user: "bob", at: Self.wednesday)
        let limits = UserLimits(requestsPerDay: 3, tokensPerWeek: 1000, costPerMonth: 200)
        let refusal = ledger.refusal("bob", limits: limits, now: Self.wednesday)
        #expect(refusal?.limitName == "tokens_per_week")
        #expect(refusal?.message(now: Self.wednesday) == "user bob reached tokens_per_week: 1000 of 1000 used; resets at 2026-12-14T00:00:00Z (in 4d10h)")
        let cost = UserLimitRefusal(user: "bob", limit: .use(.costPerMonth), value: 200, used: 200.004, resetsAt: Self.utc("2027-01-01T00:00:00Z"))
        #expect(cost.message(now: Self.wednesday).hasPrefix("user bob reached cost_per_month: $200.00 of $200.00 used; resets at 2027-01-01T00:00:00Z"))
    }

    @Test func daysOutsideEveryWindowAreDropped() {
        var ledger = UserUsageLedger()
        ledger.seed(user: "bob", day: CalendarWindow.dayNumber(Self.wednesday) - 40, use: UserUse(requests: 9))
        ledger.add(UserUse(requests: 1), user: "bob", at: Self.wednesday)
        #expect(ledger.use("bob", in: .month, now: Self.wednesday).requests == 1)
        #expect(ledger.use("bob", in: .day, now: Self.wednesday + 86_400).requests == 0)
    }

    @Test func sessionsCountOncePerKeyUpToTheMaximum() {
        var sessions = OpenSessions()
        let opened1 = sessions.open("s1", user: "bob", maximum: 2)
        #expect(opened1)
        let opened2 = sessions.open("s1", user: "bob", maximum: 2)
        #expect(opened2, "the same session again is no new one")
        let opened3 = sessions.open("s2", user: "bob", maximum: 2)
        #expect(opened3)
        let opened4 = sessions.open("s3", user: "bob", maximum: 2)
        #expect(!opened4)
        let opened5 = sessions.open("s3", user: "alice", maximum: 2)
        #expect(opened5)
        #expect(sessions.count("bob") == 2)
        sessions.close("s1", user: "bob")
        let opened6 = sessions.open("s3", user: "bob", maximum: 2)
        #expect(!opened6, "s1 is still open once")
        sessions.close("s1", user: "bob")
        let opened7 = sessions.open("s3", user: "bob", maximum: 2)
        #expect(opened7)
        let opened8 = sessions.open("s4", user: "carol", maximum: nil)
        #expect(opened8)
    }
}
