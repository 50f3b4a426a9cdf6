@testable import Gateway
import HTTPWire
import NIOHTTP1
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct RateLimitSnapshotMemoTests {
    static func headers(fiveHour: String, extra: [(String, String)] = []) -> HTTPHeaders {
        HTTPHeaders([("content-type", "text/event-stream"), ("x-codex-primary-used-percent", fiveHour), ("x-codex-primary-window-minutes", "300"),
                     ("x-codex-secondary-used-percent", "20"), ("x-codex-plan-type", "plus")] + extra)
    }

    static func head(_ headers: HTTPHeaders) -> ReceivedResponseHead {
        ReceivedResponseHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))
    }

    /// The memo answers what parsing the headers would, whether the values repeat or change.
    @Test func answersWhatParsingWould() {
        let memo = RateLimitSnapshotMemo()
        for (tag, fiveHour, extra) in [("a", "10", []), ("a", "10", []), ("a", "11", []), ("b", "11", []), ("a", "11", [("x-codex-credits-has-credits", "true")]),
                                       ("a", "11", [])] as [(String, String, [(String, String)])] {
            let headers = Self.headers(fiveHour: fiveHour, extra: extra)
            let expected = RateLimitSnapshot(headers: headers.map { ($0.name, $0.value) })
            #expect(memo.snapshot(of: Self.head(headers), tag: tag) == expected)
        }
        #expect(memo.snapshot(of: Self.head(Self.headers(fiveHour: "10")), tag: "a").fiveHour?.usedPercent == 10)
        #expect(memo.snapshot(of: Self.head(HTTPHeaders([("content-type", "text/plain")])), tag: "a") == RateLimitSnapshot(headers: []))
    }

    /// An answer is the same as the last only when its `x-` lines are byte for byte: a value that
    /// is a prefix of the last, a byte moved between name and value, a line more or less, an
    /// empty value — each is parsed afresh.
    @Test func onlyIdenticalLinesCountAsUnchanged() {
        let memo = RateLimitSnapshotMemo()
        let answers: [[(String, String)]] = [
            [("x-codex-primary-used-percent", "10"), ("x-codex-plan-type", "plus")],
            [("x-codex-primary-used-percent", "1"), ("x-codex-plan-type", "plus")],
            [("x-codex-primary-used-percent", "10"), ("x-codex-plan-type", "plus")],
            [("x-codex-primary-used-percent", "100"), ("x-codex-plan-type", "plus")],
            [("x-codex-primary-used-percen", "t100"), ("x-codex-plan-type", "plus")],
            [("x-codex-primary-used-percent", "100"), ("x-codex-plan-type", "")],
            [("x-codex-primary-used-percent", "100")],
            [("x-codex-primary-used-percent", "100"), ("x-codex-plan-type", "pro")],
            [("x-codex-plan-type", "pro"), ("x-codex-primary-used-percent", "100")],
            [("x-codex-plan-type", "pro"), ("x-codex-primary-used-percent", "100"), ("x-codex-secondary-used-percent", "5")],
            [("x-codex-plan-type", "pro"), ("x-codex-primary-used-percent", "100"), ("x-codex-secondary-used-percent", "5")],
            [],
        ]
        for (index, lines) in answers.enumerated() {
            let headers = HTTPHeaders([("content-type", "text/event-stream")] + lines)
            let expected = RateLimitSnapshot(headers: lines)
            #expect(memo.snapshot(of: Self.head(headers), tag: "a") == expected, "answer \(index)")
        }
    }
}
