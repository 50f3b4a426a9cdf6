public import Foundation

/// The calendar spans user limits are counted in, all in UTC: a day from midnight, a week from
/// Monday midnight (ISO 8601), a month from the 1st. A window's use starts again at its end.
public enum CalendarWindow: String, Hashable, Sendable {
    case day, week, month

    /// Days since 1970-01-01 (UTC) of the day holding `date`.
    public static func dayNumber(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    static func date(ofDay day: Int) -> Date {
        Date(timeIntervalSince1970: Double(day) * 86_400)
    }

    /// The first day of the window holding `date`.
    public func firstDay(containing date: Date) -> Int {
        let day = Self.dayNumber(date)
        switch self {
        case .day:
            return day
        case .week:
            // 1970-01-01 was a Thursday: day 0 is 3 days after a Monday.
            return day - ((day % 7 + 7 + 3) % 7)
        case .month:
            let parts = Self.utc.dateComponents([.year, .month], from: date)
            return Self.dayNumber(Self.utc.date(from: parts) ?? date)
        }
    }

    /// When the window holding `date` ends (the next one starts).
    public func end(containing date: Date) -> Date {
        switch self {
        case .day: Self.date(ofDay: Self.dayNumber(date) + 1)
        case .week: Self.date(ofDay: firstDay(containing: date) + 7)
        case .month: Self.utc.date(byAdding: .month, value: 1, to: Self.date(ofDay: firstDay(containing: date))) ?? date
        }
    }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }()
}
