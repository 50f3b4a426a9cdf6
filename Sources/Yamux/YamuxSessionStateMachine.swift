public import NIOCore

/// The yamux protocol for one session, as a pure state machine.
///
/// Every input (a received frame, an application request, a timer tick) returns the actions
/// the I/O shell must carry out: frames to send and events for stream channels. Protocol
/// violations return a GoAway(protocol error) frame and `.sessionFailed`.
public struct YamuxSessionStateMachine: Sendable {
    public enum Role: Hashable, Sendable {
        /// Opens odd stream ids (the reverse-tunnel receiver).
        case client
        /// Opens even stream ids (the reverse-tunnel connector).
        case server
    }

    public enum Action: Hashable, Sendable {
        case send(YamuxFrame)
        /// The peer opened a stream: create its channel, then `accept` or `reject` it.
        case inboundStreamOpened(UInt32)
        case deliver(UInt32, ByteBuffer)
        case streamAcknowledged(UInt32)
        /// The peer sent FIN on this stream.
        case remoteHalfClosed(UInt32)
        /// Both sides finished the stream normally.
        case streamClosed(UInt32)
        case streamFailed(UInt32, YamuxStreamError)
        /// The peer granted more window: buffered writes may continue.
        case sendWindowOpened(UInt32)
        case pingAnswered(rtt: TimeAmount)
        case remoteGoAway(YamuxGoAwayCode)
        /// The session is over; close the connection.
        case sessionFailed(YamuxSessionError)
        /// The peer opened more streams than `maximumInboundStreams`; this one was reset.
        case inboundStreamRefused(UInt32)
    }

    public let role: Role
    public let configuration: YamuxConfiguration
    private var streams: [UInt32: YamuxStreamState] = [:]
    private var nextStreamID: UInt32
    private var highestRemoteStreamID: UInt32 = 0
    private var pendingInbound = 0
    /// Streams the peer opened that are still open here.
    /// Streams the peer opened that are still open here (kept by `forget`, not counted per SYN).
    private var openInboundStreams = 0
    private var nextPingID: UInt32 = 0
    private var outstandingPings: [UInt32: NIODeadline] = [:]
    private var nextPingAt: NIODeadline?
    /// When the last frame of any kind arrived. A pong can queue behind megabytes of data on a
    /// saturated link; a peer whose frames keep arriving is alive even while its pong is late.
    private var lastHeardAt: NIODeadline
    private(set) public var sentGoAway = false
    private(set) public var receivedGoAway: YamuxGoAwayCode?
    private(set) public var failed: YamuxSessionError?
    /// Largest payload of one data frame we send; smaller frames interleave streams fairly.
    static let maximumDataFrame: UInt32 = 64 * 1024

    public init(role: Role, configuration: YamuxConfiguration = YamuxConfiguration(), now: NIODeadline) {
        self.role = role
        self.configuration = configuration
        nextStreamID = role == .client ? 1 : 2
        nextPingAt = configuration.keepAliveInterval.map { now + $0 }
        lastHeardAt = now
    }

    public var openStreamCount: Int { streams.count }

    /// Streams this side has opened since the session began (ids go up by two from 1 or 2).
    public var locallyOpenedStreamCount: Int { Int(nextStreamID - (role == .client ? 1 : 2)) / 2 }

    /// Whether this side has a stream with this id in any phase.
    public func hasStream(_ id: UInt32) -> Bool { streams[id] != nil }

    // MARK: Application requests

    /// Opens a stream: its id and the SYN to send.
    public mutating func openStream(now: NIODeadline) throws(YamuxSessionError) -> (id: UInt32, actions: [Action]) {
        if let failed { throw failed }
        if let receivedGoAway { throw .remoteGoAway(receivedGoAway) }
        if sentGoAway { throw .localGoAway }
        guard nextStreamID < UInt32.max - 1 else { throw .streamsExhausted }
        let id = nextStreamID
        nextStreamID += 2
        var stream = YamuxStreamState(id: id, phase: .synSent, phaseStartedAt: now)
        let frame = stream.windowUpdate(maximum: configuration.maximumStreamWindow, flags: .syn)
        streams[id] = stream
        return (id, frame.map { [.send($0)] } ?? [])
    }

    /// The application took an inbound stream: acknowledge it and grant the full window.
    public mutating func acceptStream(_ id: UInt32, now: NIODeadline) -> [Action] {
        guard var stream = streams[id], stream.phase == .synReceived else { return [] }
        pendingInbound -= 1
        stream.phase = .established
        stream.phaseStartedAt = now
        let frame = stream.windowUpdate(maximum: configuration.maximumStreamWindow, flags: .ack)
        streams[id] = stream
        return frame.map { [.send($0)] } ?? []
    }

    /// The application could not take an inbound stream: reset it.
    public mutating func rejectStream(_ id: UInt32) -> [Action] {
        guard let stream = streams[id], stream.phase == .synReceived else { return [] }
        pendingInbound -= 1
        forget(id)
        return [.send(.windowUpdate(id, delta: 0, flags: .rst))]
    }

    /// Sends as much of `data` as the stream's window allows, in frames of at most 64 KiB;
    /// what does not fit stays in `data` until `.sendWindowOpened`.
    public mutating func sendData(_ id: UInt32, _ data: inout ByteBuffer) -> [Action] {
        guard var stream = streams[id], stream.canSend, failed == nil else { return [] }
        var actions: [Action] = []
        while data.readableBytes > 0, stream.sendWindow > 0 {
            let length = min(UInt32(min(data.readableBytes, Int(UInt32.max))), stream.sendWindow, Self.maximumDataFrame)
            let chunk = data.readSlice(length: Int(length))!
            stream.sendWindow -= length
            actions.append(.send(.data(id, chunk)))
        }
        streams[id] = stream
        return actions
    }

    /// Whether the stream may still send data (and how much right now).
    public func sendWindow(of id: UInt32) -> UInt32? {
        guard let stream = streams[id], stream.canSend else { return nil }
        return stream.sendWindow
    }

    /// The application consumed `count` delivered bytes: grant the peer more window when due.
    public mutating func consumed(_ id: UInt32, count: Int) -> [Action] {
        guard var stream = streams[id], failed == nil else { return [] }
        stream.unconsumed -= min(stream.unconsumed, UInt32(clamping: count))
        let frame = stream.windowUpdate(maximum: configuration.maximumStreamWindow, flags: [])
        streams[id] = stream
        return frame.map { [.send($0)] } ?? []
    }

    /// Half-closes the stream from our side (FIN).
    public mutating func closeStream(_ id: UInt32, now: NIODeadline) -> [Action] {
        guard var stream = streams[id], failed == nil else { return [] }
        switch stream.phase {
        case .synSent, .established:
            stream.phase = .localClosed
            stream.phaseStartedAt = now
            streams[id] = stream
            return [.send(.windowUpdate(id, delta: 0, flags: .fin))]
        case .remoteClosed:
            forget(id)
            return [.send(.windowUpdate(id, delta: 0, flags: .fin)), .streamClosed(id)]
        case .synReceived:
            return rejectStream(id)
        case .localClosed:
            return []
        }
    }

    /// The application's channel is gone: keep the stream only to finish the protocol, dropping
    /// (but acknowledging) anything the peer still sends.
    public mutating func discardInbound(_ id: UInt32) -> [Action] {
        guard var stream = streams[id] else { return [] }
        stream.discardsInbound = true
        let unconsumed = Int(stream.unconsumed)
        streams[id] = stream
        return consumed(id, count: unconsumed)
    }

    /// Aborts the stream (RST).
    public mutating func resetStream(_ id: UInt32) -> [Action] {
        guard let stream = streams[id] else { return [] }
        forget(id)
        if stream.phase == .synReceived { pendingInbound -= 1 }
        return failed == nil ? [.send(.windowUpdate(id, delta: 0, flags: .rst))] : []
    }

    /// Announces that this side accepts no new streams; existing ones continue.
    public mutating func goAway(_ code: YamuxGoAwayCode = .normal) -> [Action] {
        guard !sentGoAway, failed == nil else { return [] }
        sentGoAway = true
        return [.send(.goAway(code))]
    }

    /// The connection underneath is gone: every stream fails.
    public mutating func connectionClosed() -> [Action] {
        guard failed == nil else { return [] }
        failed = .connectionClosed
        let ids = streams.keys.sorted()
        forgetAll()
        return ids.map { .streamFailed($0, .rejected) } + [.sessionFailed(.connectionClosed)]
    }

    // MARK: Timers

    /// Sends keepalive pings, detects a dead peer, and resets streams stuck opening or closing.
    public mutating func tick(now: NIODeadline) -> [Action] {
        guard failed == nil else { return [] }
        var actions: [Action] = []
        if let oldest = outstandingPings.values.min(), now - oldest >= configuration.keepAliveTimeout,
           now - lastHeardAt >= configuration.keepAliveTimeout {
            failed = .keepAliveTimeout
            return [.sessionFailed(.keepAliveTimeout)]
        }
        if let interval = configuration.keepAliveInterval, let due = nextPingAt, now >= due {
            let id = nextPingID
            nextPingID &+= 1
            outstandingPings[id] = now
            nextPingAt = now + interval
            actions.append(.send(.ping(id, flags: .syn)))
        }
        // Only opening and closing streams can time out; with thousands of idle streams open,
        // those few are picked out before any sorting (the order keeps actions deterministic).
        let timing = streams.filter { $0.value.phase == .synSent || $0.value.phase == .localClosed }
        for (id, stream) in timing.sorted(by: { $0.key < $1.key }) {
            let timeout: (TimeAmount, YamuxStreamError)? = switch stream.phase {
            case .synSent: (configuration.streamOpenTimeout, .openTimeout)
            case .localClosed: (configuration.streamCloseTimeout, .closeTimeout)
            default: nil
            }
            if let (limit, error) = timeout, now - stream.phaseStartedAt >= limit {
                forget(id)
                actions.append(.send(.windowUpdate(id, delta: 0, flags: .rst)))
                actions.append(.streamFailed(id, error))
            }
        }
        return actions
    }

    // MARK: Received frames

    public mutating func receive(_ frame: YamuxFrame, now: NIODeadline) -> [Action] {
        guard failed == nil else { return [] }
        lastHeardAt = max(lastHeardAt, now)
        let header = frame.header
        switch header.type {
        case .ping:
            guard header.streamID == 0 else { return violation("ping on stream \(header.streamID)") }
            if header.flags.contains(.syn) { return [.send(.ping(header.length, flags: .ack))] }
            guard header.flags.contains(.ack), let sentAt = outstandingPings.removeValue(forKey: header.length) else { return [] }
            return [.pingAnswered(rtt: now - sentAt)]
        case .goAway:
            guard header.streamID == 0 else { return violation("GoAway on stream \(header.streamID)") }
            let code = YamuxGoAwayCode(rawValue: header.length) ?? .internalError
            receivedGoAway = code
            return [.remoteGoAway(code)]
        case .data, .windowUpdate:
            return receiveStreamFrame(frame, now: now)
        }
    }

    private mutating func receiveStreamFrame(_ frame: YamuxFrame, now: NIODeadline) -> [Action] {
        let header = frame.header
        let id = header.streamID
        guard id != 0 else { return violation("\(header.type) frame on stream 0") }
        var actions: [Action] = []

        if header.flags.contains(.syn) {
            guard streams[id] == nil else { return violation("duplicate SYN for stream \(id)") }
            guard isRemoteID(id) else { return violation("SYN for stream \(id), which has this side's parity") }
            highestRemoteStreamID = max(highestRemoteStreamID, id)
            if sentGoAway || pendingInbound >= configuration.acceptBacklog {
                return [.send(.windowUpdate(id, delta: 0, flags: .rst))]
            }
            if openInboundStreams >= configuration.maximumInboundStreams {
                return [.send(.windowUpdate(id, delta: 0, flags: .rst)), .inboundStreamRefused(id)]
            }
            pendingInbound += 1
            openInboundStreams += 1
            streams[id] = YamuxStreamState(id: id, phase: .synReceived, phaseStartedAt: now)
            actions.append(.inboundStreamOpened(id))
        }

        guard var stream = streams[id] else {
            // Frames can still be in flight for a stream that just ended here; only ids that
            // never existed are a violation.
            return hasExisted(id) ? [] : violation("\(header.type) frame for unknown stream \(id)")
        }

        if header.flags.contains(.ack), stream.phase == .synSent {
            stream.phase = .established
            actions.append(.streamAcknowledged(id))
        }

        switch header.type {
        case .windowUpdate:
            let (grown, overflow) = stream.sendWindow.addingReportingOverflow(header.length)
            guard !overflow else { return violation("window update overflows stream \(id)'s window") }
            let wasBlocked = stream.sendWindow == 0
            stream.sendWindow = grown
            if wasBlocked, grown > 0, stream.canSend { actions.append(.sendWindowOpened(id)) }
        case .data:
            guard header.length <= stream.receiveWindow else {
                return violation("stream \(id) received \(header.length) bytes with a window of \(stream.receiveWindow)")
            }
            stream.receiveWindow -= header.length
            if header.length > 0 {
                if stream.canReceive, !stream.discardsInbound, let payload = frame.payload {
                    stream.unconsumed += header.length
                    actions.append(.deliver(id, payload))
                } else if let update = stream.windowUpdate(maximum: configuration.maximumStreamWindow, flags: []) {
                    actions.append(.send(update))
                }
            }
        case .ping, .goAway:
            break
        }

        if header.flags.contains(.rst) {
            forget(id)
            if stream.phase == .synReceived { pendingInbound -= 1 }
            // A stream the peer resets before we even reported it simply never existed for the application.
            if header.flags.contains(.syn) { return actions.filter { $0 != .inboundStreamOpened(id) } }
            actions.append(.streamFailed(id, .resetByPeer))
            return actions
        }
        if header.flags.contains(.fin) {
            switch stream.phase {
            case .synSent, .synReceived, .established:
                stream.phase = .remoteClosed
                stream.phaseStartedAt = now
                actions.append(.remoteHalfClosed(id))
            case .localClosed:
                forget(id)
                actions.append(.remoteHalfClosed(id))
                actions.append(.streamClosed(id))
                return actions
            case .remoteClosed:
                break
            }
        }
        streams[id] = stream
        return actions
    }

    /// Bytes that do not form a valid frame (bad version or type, oversized payload).
    public mutating func malformedInput(_ detail: String) -> [Action] {
        guard failed == nil else { return [] }
        return violation(detail)
    }

    /// Drops a stream (or all), keeping the count of the peer's open streams.
    private mutating func forget(_ id: UInt32) {
        if streams.removeValue(forKey: id) != nil, isRemoteID(id) { openInboundStreams -= 1 }
    }

    private mutating func forgetAll() {
        streams.removeAll()
        openInboundStreams = 0
    }

    private func isRemoteID(_ id: UInt32) -> Bool {
        (id % 2 == 1) == (role == .server)
    }

    private func hasExisted(_ id: UInt32) -> Bool {
        isRemoteID(id) ? id <= highestRemoteStreamID : id < nextStreamID
    }

    private mutating func violation(_ detail: String) -> [Action] {
        let error = YamuxSessionError.protocolViolation(detail)
        failed = error
        forgetAll()
        return [.send(.goAway(.protocolError)), .sessionFailed(error)]
    }
}
