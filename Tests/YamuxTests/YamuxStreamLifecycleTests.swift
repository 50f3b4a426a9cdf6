import NIOCore
import NIOEmbedded
import Testing
@testable import Yamux

/// The stream channel's lifecycle alone: each state, each event, what it does to reads, writes,
/// FIN and RST — and the events that do not fit a state.
@Suite(.timeLimit(.minutes(1))) struct YamuxStreamLifecycleTests {
    typealias Lifecycle = YamuxStreamLifecycle

    // MARK: States to start from

    static func open() -> Lifecycle {
        var lifecycle = Lifecycle()
        let activated = lifecycle.activate()
        #expect(activated)
        return lifecycle
    }

    /// We closed our output and the FIN went out.
    static func localHalfClosed() -> Lifecycle {
        var lifecycle = open()
        #expect(lifecycle.closeOutput() == nil)
        #expect(lifecycle.writesDrained() == [.sendFin])
        return lifecycle
    }

    /// The peer's FIN reached an application that allows half-closure.
    static func remoteHalfClosed() -> Lifecycle {
        var lifecycle = open()
        lifecycle.receiveFin()
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: true) == [.fireInputClosed])
        return lifecycle
    }

    static func closed() -> Lifecycle {
        var lifecycle = open()
        #expect(lifecycle.closeAll() == .success([.sendFin, .finish]))
        return lifecycle
    }

    // MARK: Opening

    @Test func aStreamBecomesActiveOnceAndNotAfterClosing() {
        var lifecycle = Lifecycle()
        #expect(!lifecycle.isActive)
        #expect(lifecycle.checkWrite() == nil, "writes queue while the initializer runs")
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: false) == [], "nothing is delivered before activation")
        let activated = lifecycle.activate()
        #expect(activated)
        let activatedTwice = lifecycle.activate()
        #expect(!activatedTwice, "a second activation is refused")

        var closedEarly = Lifecycle()
        #expect(closedEarly.fail() == [.finish], "no error event on a channel that never became active")
        let activatedAfterClosing = closedEarly.activate()
        #expect(!activatedAfterClosing, "a stream closed while initializing never becomes active")
    }

    // MARK: Open

    @Test func openAcceptsWritesAndEveryWayOfClosing() {
        #expect(Self.open().checkWrite() == nil)

        var output = Self.open()
        #expect(output.closeOutput() == nil)
        #expect(output.output == .finQueued)
        #expect(output.checkWrite() == .outputClosed, "no writes after close(mode: .output)")

        var all = Self.open()
        #expect(all.closeAll() == .success([.sendFin, .finish]))
        var reset = Self.open()
        #expect(reset.reset() == .success([.sendReset, .finish]))
        var failed = Self.open()
        #expect(failed.fail() == [.fireError, .finish])
        #expect(failed.isClosed)
    }

    @Test func writesDrainedWithoutAQueuedFinDoesNothing() {
        var lifecycle = Self.open()
        #expect(lifecycle.writesDrained() == [])
        #expect(lifecycle.output == .open)
    }

    // MARK: Local half-closure

    @Test func theFinWaitsForTheWritesBeforeIt() {
        var lifecycle = Self.open()
        #expect(lifecycle.closeOutput() == nil)
        #expect(lifecycle.output == .finQueued, "no FIN while writes are queued")
        #expect(lifecycle.writesDrained() == [.sendFin])
        #expect(lifecycle.output == .finSent)
        #expect(lifecycle.writesDrained() == [], "one FIN")
    }

    @Test func aLocallyHalfClosedStreamStillReadsAndClosesOnThePeersFin() {
        var lifecycle = Self.localHalfClosed()
        #expect(lifecycle.checkWrite() == .outputClosed)
        #expect(lifecycle.closeOutput() == .outputClosed)
        #expect(lifecycle.acceptsReads)
        lifecycle.receiveFin()
        // Half-closure allowed or not: our output is done, so the stream is over, without a second FIN.
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: true) == [.finish])
        #expect(lifecycle.isClosed)
    }

    @Test func closingAllAfterTheFinSendsNoSecondFin() {
        var lifecycle = Self.localHalfClosed()
        #expect(lifecycle.closeAll() == .success([.finish]))
        var queued = Self.open()
        _ = queued.closeOutput()
        #expect(queued.closeAll() == .success([.sendFin, .finish]), "a queued FIN goes out on close")
    }

    // MARK: Remote half-closure

    @Test func thePeersFinReachesTheApplicationAfterItsData() {
        var lifecycle = Self.open()
        lifecycle.receiveFin()
        #expect(lifecycle.input == .finReceived)
        #expect(lifecycle.acceptsReads, "buffered data is still read")
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: true) == [.fireInputClosed])
        #expect(lifecycle.input == .finDelivered)
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: true) == [], "the end is delivered once")
        lifecycle.receiveFin()
        #expect(lifecycle.input == .finDelivered, "a repeated FIN changes nothing")
    }

    @Test func withoutHalfClosureThePeersFinClosesTheChannel() {
        var lifecycle = Self.open()
        lifecycle.receiveFin()
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: false) == [.sendFin, .finish])
        #expect(lifecycle.isClosed)
    }

    @Test func aRemotelyHalfClosedStreamStillWritesAndClosesAfterItsOwnFin() {
        var lifecycle = Self.remoteHalfClosed()
        #expect(lifecycle.checkWrite() == nil)
        #expect(lifecycle.closeOutput() == nil)
        #expect(lifecycle.writesDrained() == [.sendFin, .finish])
        #expect(lifecycle.isClosed)
    }

    @Test func bothEndsFinishedClosesOnceTheInputIsRead() {
        var lifecycle = Self.localHalfClosed()
        #expect(lifecycle.bothEnded() == [])
        #expect(lifecycle.input == .finReceived)
        #expect(lifecycle.closeIfBothEnded() == [.finish])

        var stillWriting = Self.open()
        _ = stillWriting.bothEnded()
        #expect(stillWriting.closeIfBothEnded() == [], "our FIN has not gone out")
    }

    // MARK: Reset and failure

    @Test func resetAndFailureCloseFromAnyOpenState() {
        for start in [Self.open(), Self.localHalfClosed(), Self.remoteHalfClosed()] {
            var reset = start
            #expect(reset.reset() == .success([.sendReset, .finish]))
            var failed = start
            #expect(failed.fail() == [.fireError, .finish])
        }
    }

    // MARK: Closed: every event is refused or ignored

    @Test func aClosedStreamRefusesOrIgnoresEverything() {
        var lifecycle = Self.closed()
        #expect(lifecycle.checkWrite() == .ioOnClosedChannel)
        #expect(!lifecycle.acceptsReads)
        #expect(lifecycle.closeOutput() == .alreadyClosed)
        #expect(lifecycle.closeAll() == .failure(.alreadyClosed))
        #expect(lifecycle.reset() == .failure(.alreadyClosed))
        #expect(lifecycle.fail() == [])
        let reactivated = lifecycle.activate()
        #expect(!reactivated)
        lifecycle.receiveFin()
        #expect(lifecycle.readsDrained(allowRemoteHalfClosure: true) == [])
        #expect(lifecycle.writesDrained() == [])
        #expect(lifecycle.bothEnded() == [])
        #expect(lifecycle.closeIfBothEnded() == [])
        #expect(lifecycle == Self.closed(), "nothing changed")
    }
}

/// The stream's queue of writes as the session takes them: flushed ones only, partially, or
/// several small ones at once.
@Suite(.timeLimit(.minutes(1))) struct YamuxStreamWriteQueueTests {
    let loop = EmbeddedEventLoop()

    @Test func onlyFlushedWritesLeaveAndPartialSendsKeepTheRest() {
        var queue = YamuxStreamWriteQueue()
        queue.append(ByteBuffer(string: "hello"), promise: nil)
        #expect(queue.firstChunk(maximum: 10) == nil, "not flushed yet")
        queue.flush()
        queue.append(ByteBuffer(string: "later"), promise: nil)
        #expect(queue.pendingBytes == 10)
        #expect(queue.firstChunk(maximum: 3) == ByteBuffer(string: "hel"))
        #expect(queue.sent(3).finished == false)
        #expect(queue.firstChunk(maximum: 10) == ByteBuffer(string: "lo"))
        #expect(queue.sent(2).finished == true)
        #expect(queue.firstChunk(maximum: 10) == nil, "the second write was not flushed")
        #expect(queue.pendingBytes == 5)
        #expect(!queue.isEmpty)
    }

    @Test func smallFlushedWritesAreTakenTogether() {
        var queue = YamuxStreamWriteQueue()
        for text in ["a", "bb", "ccc", "dddd"] { queue.append(ByteBuffer(string: text), promise: nil) }
        queue.flush()
        let batch = queue.takeCoalesced(limit: 6, allocator: ByteBufferAllocator())
        #expect(batch?.data == ByteBuffer(string: "abbccc"))
        #expect(queue.takeCoalesced(limit: 100, allocator: ByteBufferAllocator()) == nil, "one write left: nothing to coalesce")
        #expect(queue.pendingBytes == 4)
    }

    @Test func removingAllHandsBackEveryPromise() throws {
        var queue = YamuxStreamWriteQueue()
        let first = loop.makePromise(of: Void.self)
        let second = loop.makePromise(of: Void.self)
        queue.append(ByteBuffer(string: "x"), promise: first)
        queue.append(ByteBuffer(string: "y"), promise: second)
        let promises = queue.removeAll()
        #expect(promises.count == 2)
        for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
        #expect(queue.isEmpty && queue.pendingBytes == 0)
    }
}
