import Foundation
@testable import Gateway
import Testing

/// The connection guard's decisions alone, byte by byte and timer by timer.
@Suite(.timeLimit(.minutes(1))) struct ConnectionDeadlinesTests {
    func deadlines(maxHeaderBytes: Int = 64) -> ConnectionDeadlines {
        ConnectionDeadlines(maxHeaderBytes: maxHeaderBytes, headerTimeout: 15, idleTimeout: 120)
    }

    @Test func aNewConnectionOwesAHeadWithinTheHeaderTimeout() {
        var deadlines = deadlines()
        #expect(deadlines.connectionOpened() == .arm(.header, seconds: 15))
        #expect(deadlines.timerFired(.header) == .refuse(.headerTimeout))
        #expect(deadlines.received(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == nil, "nothing after the end")
    }

    @Test func theHeadEndsAtTheBlankLineEvenAcrossReads() {
        var deadlines = deadlines()
        _ = deadlines.connectionOpened()
        #expect(deadlines.received(Array("GET / HTTP/1.1\r\nHost: x\r\n\r".utf8)) == nil)
        #expect(deadlines.received(Array("\n".utf8)) == .disarm)
        // The body and anything after it are not the guard's business.
        #expect(deadlines.received([UInt8](repeating: 0x41, count: 1000)) == nil)
        #expect(deadlines.timerFired(.header) == nil, "a late timer changes nothing")
    }

    @Test func bytesDoNotPushTheHeaderDeadlineBack() {
        var deadlines = deadlines()
        _ = deadlines.connectionOpened()
        for byte in "POST /v1/responses".utf8 { #expect(deadlines.received([byte]) == nil) }
        #expect(deadlines.timerFired(.header) == .refuse(.headerTimeout))
    }

    @Test func aHeadOverTheCapIsRefusedAtTheFirstByteTooMany() {
        var deadlines = deadlines(maxHeaderBytes: 10)
        _ = deadlines.connectionOpened()
        #expect(deadlines.received(Array("GET /12345".utf8)) == nil)
        #expect(deadlines.received(Array("6".utf8)) == .refuse(.headerTooLarge))
        #expect(deadlines.received(Array("\r\n\r\n".utf8)) == nil)
    }

    @Test func keepAliveWaitsIdleThenGivesTheNextHeadItsOwnDeadline() {
        var deadlines = deadlines()
        _ = deadlines.connectionOpened()
        _ = deadlines.received(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(deadlines.responseCompleted() == .arm(.idle, seconds: 120))
        #expect(deadlines.received(Array("GE".utf8)) == .arm(.header, seconds: 15))
        #expect(deadlines.received(Array("T / HTTP/1.1\r\n\r\n".utf8)) == .disarm)
        #expect(deadlines.responseCompleted() == .arm(.idle, seconds: 120))
        #expect(deadlines.timerFired(.idle) == .close)
    }

    @Test func aPipelinedRequestStartsWithoutNewBytes() {
        var deadlines = deadlines()
        _ = deadlines.connectionOpened()
        _ = deadlines.received(Array("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8))
        _ = deadlines.responseCompleted()
        // The second head was already buffered: the handler says so, and the idle timer goes.
        #expect(deadlines.requestStarted() == .disarm)
        #expect(deadlines.timerFired(.idle) == nil)
    }

    @Test func responseCompletedOutsideARequestIsIgnored() {
        var deadlines = deadlines()
        _ = deadlines.connectionOpened()
        #expect(deadlines.responseCompleted() == nil)
        #expect(deadlines.timerFired(.idle) == nil, "no idle timer was armed")
    }
}

@Suite(.timeLimit(.minutes(1))) struct AuthenticationThrottleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func anAddressIsRefusedAfterTheLimitUntilItsMinuteIsOver() {
        let throttle = AuthenticationThrottle(failuresPerMinute: 3)
        for second in 0..<3 {
            #expect(throttle.retryAfter("10.0.0.1", now: start + Double(second)) == nil)
            throttle.recordFailure("10.0.0.1", now: start + Double(second))
        }
        #expect(throttle.retryAfter("10.0.0.1", now: start + 3) == 57)
        #expect(throttle.retryAfter("10.0.0.1", now: start + 59.5) == 1)
        #expect(throttle.retryAfter("10.0.0.2", now: start + 3) == nil, "other addresses are not affected")
        #expect(throttle.retryAfter("10.0.0.1", now: start + 60) == nil, "a new minute")
        throttle.recordFailure("10.0.0.1", now: start + 60)
        #expect(throttle.retryAfter("10.0.0.1", now: start + 61) == nil, "the count started over")
    }

    @Test func memoryStaysBoundedUnderManyAddresses() {
        let throttle = AuthenticationThrottle(failuresPerMinute: 1, capacity: 100)
        for index in 0..<1000 { throttle.recordFailure("10.0.\(index / 256).\(index % 256)", now: start + Double(index) / 1000) }
        // The newest address is still remembered; the oldest were dropped to make room.
        #expect(throttle.retryAfter("10.0.3.231", now: start + 1) != nil)
        #expect(throttle.retryAfter("10.0.0.0", now: start + 1) == nil)
    }
}
