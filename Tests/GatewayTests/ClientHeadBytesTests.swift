import Foundation
@testable import Gateway
import HTTPWire
import NIOCore
import NIOHTTP1
import PoolCore
import Testing

/// The client's copy of an upstream head written from the bytes read: the same lines, in the
/// same order, as the string path (`clientResponseHeaders`) gives, and the parts it reads there.
@Suite(.timeLimit(.minutes(1))) struct ClientHeadBytesTests {
    static let upstreamText = """
        HTTP/1.1 200 OK\r
        CF-Ray: abc\r
        cf-cache-status: DYNAMIC\r
        Connection: keep-alive\r
        Content-Length: 42\r
        x-codex-primary-used-percent: 12.5\r
        X-Codex-Secondary-Reset-At: 1700000000\r
        X-CODEX-PLAN-TYPE: pro\r
        x-codex-credits-balance: 3\r
        x-other-primary-window-minutes: 60\r
        Content-Type:   text/event-stream  \r
        Set-Cookie: a=b\r
        Set-Cookie: c=d\r
        X-Codexpool-Credential: connector-own\r
        x-codex-turn-state: t1\r
        X-Forwarded-For: 10.0.0.1\r
        X-Request-Id: r1\r
        \r

        """

    static func parsedHead() throws -> ReceivedResponseHead {
        var parser = HTTPResponseParser()
        parser.expectResponse(toHEAD: false)
        parser.append(ByteBuffer(string: upstreamText))
        guard case .head(let head)? = try parser.next() else {
            Issue.record("no head")
            throw CancellationError()
        }
        return head
    }

    @Test func theHeadReadsItsFieldsWhereTheyLie() throws {
        let head = try Self.parsedHead()
        #expect(head.status == .ok && head.version == .http1_1)
        #expect(head.fields.count == 16)
        #expect(head.first(name: "content-type") == "text/event-stream")
        #expect(head.first(name: "set-cookie") == "a=b")
        #expect(head.first(name: "x-codexpool-credential") == "connector-own")
        #expect(head.first(name: "x-absent") == nil)
        #expect(head.headers["set-cookie"] == ["a=b", "c=d"])
        #expect(head.headers.map(\.name).first == "CF-Ray")
        // Made from NIO's parts (tests, relays), a head reads the same.
        let rebuilt = ReceivedResponseHead(head.head)
        #expect(rebuilt.headers == head.headers && rebuilt.first(name: "x-request-id") == "r1")
    }

    @Test func bytesPathWritesWhatTheStringPathGives() throws {
        let head = try Self.parsedHead()
        let status = AggregateStatus(fiveHourUtilization: 40, fiveHourReset: Date(timeIntervalSince1970: 1_700_000_500), weeklyUtilization: 7.5,
                                     weeklyReset: nil, planWeight: 2)
        let now = Date(timeIntervalSince1970: 0)
        var expected = RateLimitHeaderRewriter.clientResponseHeaders(head.headers, with: status, now: now)
        expected.replaceOrAdd(name: servingCredentialHeader, value: "balancer-tag")
        var buffer = ByteBuffer()
        let givesLength = RateLimitHeaderRewriter.writeClientHeaderLines(of: head, replacing: servingCredentialHeaderName, aggregate: status,
                                                                         servedBy: "balancer-tag", into: &buffer)
        #expect(givesLength)
        #expect(String(buffer: buffer) == expected.map { "\($0.name): \($0.value)\r\n" }.joined())
        #expect(String(buffer: buffer).contains("content-type") == false && String(buffer: buffer).contains("Content-Type: text/event-stream\r\n"))
        #expect(!String(buffer: buffer).contains("connector-own") && !String(buffer: buffer).contains("12.5"))
    }

    @Test func aggregateLinesPrintNumbersAsPrintfWould() {
        var values: [Double] = [0, 0.004, 0.005, 0.015, 1, 9.995, 12.345, 33.333_333, 66.666_666, 99.994, 99.995, 99.999, 100]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Double.random(in: 0...100, using: &generator)) }
        for value in values {
            let status = AggregateStatus(fiveHourUtilization: value, fiveHourReset: nil, weeklyUtilization: 100 - value, weeklyReset: nil, planWeight: 0)
            let headers = RateLimitHeaderRewriter.aggregateHeaders(status, now: .now)
            // %.2f rounds half to even on the binary value; the header rounds the hundredths half away from zero.
            let expected = Int((value * 100).rounded())
            #expect(headers.first { $0.0 == "x-codex-primary-used-percent" }?.1 == "\(expected / 100).\(expected % 100 < 10 ? "0" : "")\(expected % 100)")
            #expect(headers.map(\.0) == ["x-codex-primary-used-percent", "x-codex-primary-window-minutes", "x-codex-secondary-used-percent",
                                          "x-codex-secondary-window-minutes"], "no resets, no plan weight: no lines for them")
        }
        let full = AggregateStatus(fiveHourUtilization: 5, fiveHourReset: Date(timeIntervalSince1970: 1_700_000_000.4), weeklyUtilization: 0,
                                   weeklyReset: Date(timeIntervalSince1970: 4_102_444_800.6), planWeight: 1.5)
        #expect(RateLimitHeaderRewriter.aggregateHeaders(full, now: .now).map { "\($0.0): \($0.1)" } == [
            "x-codex-primary-used-percent: 5.00", "x-codex-primary-window-minutes: 300", "x-codex-primary-reset-at: 1700000000",
            "x-codex-secondary-used-percent: 0.00", "x-codex-secondary-window-minutes: 10080", "x-codex-secondary-reset-at: 4102444801",
            "x-ocm-plan-weight: 1.5",
        ])
        var buffer = ByteBuffer()
        RateLimitHeaderRewriter.writeAggregateHeaderLines(AggregateStatus(fiveHourUtilization: 100, fiveHourReset: nil, weeklyUtilization: 50,
                                                                          weeklyReset: nil, planWeight: 20), into: &buffer)
        #expect(String(buffer: buffer) == "x-codex-primary-used-percent: 100.00\r\nx-codex-primary-window-minutes: 300\r\n"
            + "x-codex-secondary-used-percent: 50.00\r\nx-codex-secondary-window-minutes: 10080\r\nx-ocm-plan-weight: 20\r\n")
    }

    @Test func nameSetsMatchWholeNamesInAnyCase() {
        let set = HTTPHeaderNameSet(["x-a", "Transfer-Encoding", "te"])
        for name in ["x-a", "X-A", "transfer-encoding", "TRANSFER-ENCODING", "te", "Te"] { #expect(set.contains(name)) }
        for name in ["x-ab", "x-", "", "transfer-encodin", "t", "tee", "x_a"] { #expect(!set.contains(name)) }
        let suffixes = HTTPHeaderNameSet(["-used-percent", "-limit-name"])
        var name = "X-Other-Primary-Used-Percent"
        #expect(name.withUTF8 { suffixes.containsSuffix(of: UnsafeRawBufferPointer($0)) })
        name = "x-other-used-percentage"
        #expect(!name.withUTF8 { suffixes.containsSuffix(of: UnsafeRawBufferPointer($0)) })
    }
}
