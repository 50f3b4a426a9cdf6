import NIOCore
import Testing
import Yamux

@Suite(.timeLimit(.minutes(1))) struct YamuxSessionStateMachineTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    typealias Machine = YamuxSessionStateMachine

    func machine(_ role: Machine.Role, keepAlive: TimeAmount? = nil, configure: (inout YamuxConfiguration) -> Void = { _ in }) -> Machine {
        var configuration = YamuxConfiguration()
        configuration.keepAliveInterval = keepAlive
        configure(&configuration)
        return Machine(role: role, configuration: configuration, now: start)
    }

    /// Frames the machine wants sent.
    func sent(_ actions: [Machine.Action]) -> [YamuxFrame] {
        actions.compactMap { if case .send(let frame) = $0 { frame } else { nil } }
    }

    func isFailure(_ actions: [Machine.Action], containing text: String) -> Bool {
        actions.contains { if case .sessionFailed(.protocolViolation(let detail)) = $0 { detail.contains(text) } else { false } }
            && sent(actions) == [.goAway(.protocolError)]
    }

    @Test func clientsOpenOddAndServersEvenStreamsWithAWindowGrant() throws {
        var client = machine(.client)
        var server = machine(.server)
        let first = try client.openStream(now: start)
        #expect(first.id == 1)
        #expect(sent(first.actions) == [.windowUpdate(1, delta: 256 * 1024, flags: .syn)], "the 512 KiB maximum is granted with the SYN")
        #expect(try client.openStream(now: start).id == 3)
        #expect(try server.openStream(now: start).id == 2)
        #expect(try server.openStream(now: start).id == 4)
        #expect(try server.openStream(now: start).id == 6)
        // Counted per side, whether or not the streams are still open.
        #expect(client.locallyOpenedStreamCount == 2)
        #expect(server.locallyOpenedStreamCount == 3)
        #expect(machine(.client).locallyOpenedStreamCount == 0 && machine(.server).locallyOpenedStreamCount == 0)
    }

    @Test func inboundStreamsAreAcknowledgedOnAccept() {
        var server = machine(.server)
        #expect(server.receive(.windowUpdate(1, delta: 262_144, flags: .syn), now: start) == [.inboundStreamOpened(1)])
        #expect(sent(server.acceptStream(1, now: start)) == [.windowUpdate(1, delta: 262_144, flags: .ack)])
        #expect(server.receive(.data(1, ByteBuffer(string: "hi")), now: start) == [.deliver(1, ByteBuffer(string: "hi"))])
    }

    @Test func openedStreamsAreEstablishedByTheAck() throws {
        var client = machine(.client)
        let (id, _) = try client.openStream(now: start)
        #expect(client.receive(.windowUpdate(id, delta: 262_144, flags: .ack), now: start) == [.streamAcknowledged(id)])
    }

    /// Flow control: the sender stops at the window; the receiver grants more once half is consumed.
    @Test func windowsLimitSendingAndGrowAsTheReaderConsumes() throws {
        var client = machine(.client) { $0.maximumStreamWindow = 256 * 1024 }
        var server = machine(.server) { $0.maximumStreamWindow = 256 * 1024 }
        let (id, open) = try client.openStream(now: start)
        for frame in sent(open) { _ = server.receive(frame, now: start) }
        for frame in sent(server.acceptStream(id, now: start)) { _ = client.receive(frame, now: start) }

        var data = ByteBuffer(repeating: 1, count: 300 * 1024)
        let frames = sent(client.sendData(id, &data))
        #expect(frames.map(\.header.length) == [65536, 65536, 65536, 65536])
        #expect(data.readableBytes == 300 * 1024 - 262_144, "the rest waits for window")
        #expect(client.sendWindow(of: id) == 0)

        var delivered = 0
        for frame in frames {
            for action in server.receive(frame, now: start) { if case .deliver(_, let bytes) = action { delivered += bytes.readableBytes } }
        }
        #expect(delivered == 262_144)
        #expect(sent(server.consumed(id, count: 100_000)) == [], "less than half the window consumed")
        let update = sent(server.consumed(id, count: 31_072))
        #expect(update == [.windowUpdate(id, delta: 131_072)])
        #expect(client.receive(update[0], now: start) == [.sendWindowOpened(id)])
        #expect(sent(client.sendData(id, &data)).map(\.header.length) == [45_056], "307 200 − 262 144 bytes were left")
    }

    @Test func dataBeyondTheWindowEndsTheSession() {
        var server = machine(.server)
        _ = server.receive(.windowUpdate(1, delta: 0, flags: .syn), now: start)
        let tooMuch = ByteBuffer(repeating: 0, count: 262_145)
        #expect(isFailure(server.receive(.data(1, tooMuch), now: start), containing: "with a window of 262144"))
        #expect(server.receive(.ping(1, flags: .syn), now: start) == [], "a failed session ignores everything")
    }

    @Test func duplicateSYNWrongParityAndUnknownStreamsAreViolations() {
        var duplicate = machine(.server)
        _ = duplicate.receive(.windowUpdate(1, delta: 0, flags: .syn), now: start)
        #expect(isFailure(duplicate.receive(.windowUpdate(1, delta: 0, flags: .syn), now: start), containing: "duplicate SYN"))

        var parity = machine(.server)
        #expect(isFailure(parity.receive(.windowUpdate(2, delta: 0, flags: .syn), now: start), containing: "this side's parity"))

        var unknown = machine(.server)
        #expect(isFailure(unknown.receive(.data(5, ByteBuffer(string: "x")), now: start), containing: "unknown stream 5"))

        var zero = machine(.client)
        #expect(isFailure(zero.receive(.data(0, ByteBuffer()), now: start), containing: "on stream 0"))

        var badPing = machine(.client)
        #expect(isFailure(badPing.receive(YamuxFrame(header: YamuxFrameHeader(type: .ping, flags: .syn, streamID: 3, length: 1)), now: start),
                          containing: "ping on stream 3"))
    }

    @Test func framesForStreamsThatJustEndedAreIgnored() throws {
        var client = machine(.client)
        let (id, _) = try client.openStream(now: start)
        _ = client.resetStream(id)
        #expect(client.receive(.data(id, ByteBuffer(string: "late")), now: start) == [])
        #expect(client.receive(.windowUpdate(id, delta: 10), now: start) == [])
    }

    @Test func windowOverflowIsAViolation() throws {
        var client = machine(.client)
        let (id, _) = try client.openStream(now: start)
        #expect(isFailure(client.receive(.windowUpdate(id, delta: .max), now: start), containing: "overflows"))
    }

    @Test func halfCloseInBothOrders() throws {
        var client = machine(.client)
        let (first, _) = try client.openStream(now: start)
        _ = client.receive(.windowUpdate(first, delta: 0, flags: .ack), now: start)
        #expect(sent(client.closeStream(first, now: start)) == [.windowUpdate(first, delta: 0, flags: .fin)])
        #expect(client.receive(.data(first, ByteBuffer(string: "still reading")), now: start) == [.deliver(first, ByteBuffer(string: "still reading"))])
        #expect(client.receive(.windowUpdate(first, delta: 0, flags: .fin), now: start) == [.remoteHalfClosed(first), .streamClosed(first)])
        #expect(!client.hasStream(first))

        let (second, _) = try client.openStream(now: start)
        #expect(client.receive(.data(second, ByteBuffer(), flags: [.ack, .fin]), now: start) == [.streamAcknowledged(second), .remoteHalfClosed(second)])
        var reply = ByteBuffer(string: "reply")
        #expect(sent(client.sendData(second, &reply)) == [.data(second, ByteBuffer(string: "reply"))], "we may still send")
        let closing = client.closeStream(second, now: start)
        #expect(sent(closing) == [.windowUpdate(second, delta: 0, flags: .fin)])
        #expect(closing.contains(.streamClosed(second)))
    }

    @Test func resetByThePeer() throws {
        var client = machine(.client)
        let (id, _) = try client.openStream(now: start)
        #expect(client.receive(.windowUpdate(id, delta: 0, flags: .rst), now: start) == [.streamFailed(id, .resetByPeer)])
        var data = ByteBuffer(string: "x")
        #expect(client.sendData(id, &data).isEmpty)
    }

    @Test func pingsAreEchoedAndMeasured() {
        var client = machine(.client, keepAlive: .seconds(15))
        #expect(sent(client.receive(.ping(42, flags: .syn), now: start)) == [.ping(42, flags: .ack)])
        #expect(sent(client.tick(now: start + .seconds(14))) == [])
        let ping = sent(client.tick(now: start + .seconds(15)))
        #expect(ping == [.ping(0, flags: .syn)])
        #expect(client.receive(.ping(0, flags: .ack), now: start + .milliseconds(15_020)) == [.pingAnswered(rtt: .milliseconds(20))])
        #expect(client.receive(.ping(99, flags: .ack), now: start) == [], "unknown answers are ignored")
    }

    /// The peer stops answering: the session is declared dead after the keepalive timeout.
    @Test func keepAliveTimeout() {
        var client = machine(.client, keepAlive: .seconds(15))
        #expect(sent(client.tick(now: start + .seconds(15))) == [.ping(0, flags: .syn)])
        #expect(client.tick(now: start + .seconds(24)) == [])
        #expect(client.tick(now: start + .seconds(25)) == [.sessionFailed(.keepAliveTimeout)])
        #expect(client.failed == .keepAliveTimeout)
    }

    /// A pong stuck behind data on a saturated link: frames keep arriving, so the peer is alive;
    /// once they stop for the whole timeout, the session is dead.
    @Test func keepAliveCountsAnyFrameAsSignOfLife() throws {
        var client = machine(.client, keepAlive: .seconds(15))
        let (id, _) = try client.openStream(now: start)
        _ = client.receive(.windowUpdate(id, delta: 0, flags: .ack), now: start)
        #expect(sent(client.tick(now: start + .seconds(15))) == [.ping(0, flags: .syn)])
        for second in 16...40 {
            _ = client.receive(.data(id, ByteBuffer(string: "x")), now: start + .seconds(Int64(second)))
            #expect(client.tick(now: start + .seconds(Int64(second))).contains(.sessionFailed(.keepAliveTimeout)) == false)
        }
        #expect(client.tick(now: start + .seconds(49)).contains(.sessionFailed(.keepAliveTimeout)) == false)
        #expect(client.tick(now: start + .seconds(50)) == [.sessionFailed(.keepAliveTimeout)])
    }

    @Test func streamsStuckOpeningOrClosingAreReset() throws {
        var client = machine(.client)
        let (opening, _) = try client.openStream(now: start)
        let (closing, _) = try client.openStream(now: start)
        _ = client.receive(.windowUpdate(closing, delta: 0, flags: .ack), now: start)
        _ = client.closeStream(closing, now: start + .seconds(10))
        #expect(client.tick(now: start + .seconds(75)) == [.send(.windowUpdate(opening, delta: 0, flags: .rst)), .streamFailed(opening, .openTimeout)])
        #expect(client.tick(now: start + .seconds(310)) == [.send(.windowUpdate(closing, delta: 0, flags: .rst)), .streamFailed(closing, .closeTimeout)])
    }

    @Test func goAwayInBothDirections() {
        var client = machine(.client)
        #expect(client.receive(.goAway(.normal), now: start) == [.remoteGoAway(.normal)])
        #expect(throws: YamuxSessionError.remoteGoAway(.normal)) { try client.openStream(now: start) }

        var server = machine(.server)
        #expect(sent(server.goAway()) == [.goAway(.normal)])
        #expect(sent(server.receive(.windowUpdate(1, delta: 0, flags: .syn), now: start)) == [.windowUpdate(1, delta: 0, flags: .rst)])
    }

    @Test func acceptBacklogIsBounded() {
        var server = machine(.server) { $0.acceptBacklog = 2 }
        #expect(server.receive(.windowUpdate(1, delta: 0, flags: .syn), now: start) == [.inboundStreamOpened(1)])
        #expect(server.receive(.windowUpdate(3, delta: 0, flags: .syn), now: start) == [.inboundStreamOpened(3)])
        #expect(sent(server.receive(.windowUpdate(5, delta: 0, flags: .syn), now: start)) == [.windowUpdate(5, delta: 0, flags: .rst)])
        _ = server.acceptStream(1, now: start)
        #expect(server.receive(.windowUpdate(7, delta: 0, flags: .syn), now: start) == [.inboundStreamOpened(7)])
    }

    @Test func discardedStreamsStillGrantWindow() throws {
        var server = machine(.server)
        _ = server.receive(.windowUpdate(1, delta: 0, flags: .syn), now: start)
        _ = server.acceptStream(1, now: start)
        _ = server.receive(.data(1, ByteBuffer(repeating: 0, count: 200_000)), now: start)
        #expect(sent(server.discardInbound(1)) == [], "200 000 consumed is under half of the 512 KiB window")
        let more = server.receive(.data(1, ByteBuffer(repeating: 0, count: 300_000)), now: start)
        #expect(sent(more) == [.windowUpdate(1, delta: 500_000)], "dropped data is acknowledged at once, back to the full window")
    }

    @Test func connectionLossFailsEveryStream() throws {
        var client = machine(.client)
        let (a, _) = try client.openStream(now: start)
        let (b, _) = try client.openStream(now: start)
        #expect(client.connectionClosed() == [.streamFailed(a, .rejected), .streamFailed(b, .rejected), .sessionFailed(.connectionClosed)])
        #expect(throws: YamuxSessionError.connectionClosed) { try client.openStream(now: start) }
    }
}
