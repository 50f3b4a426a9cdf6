public import NIOCore

/// Runs a yamux session on a connection and exposes each stream as a `YamuxStreamChannel`.
///
/// The protocol decisions are `YamuxSessionStateMachine`'s; this handler only parses bytes
/// into frames, carries out the machine's actions, and runs the timer.
public final class YamuxSessionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public typealias StreamInitializer = @Sendable (any Channel) -> EventLoopFuture<Void>

    /// Bytes moved from one stream to the connection before writability is checked again.
    static let drainChunk = 64 * 1024

    let configuration: YamuxConfiguration
    private var machine: YamuxSessionStateMachine
    private var parser: YamuxFrameParser
    private var received = ByteBuffer()
    private let inboundStreamInitializer: StreamInitializer?
    private var context: ChannelHandlerContext?
    private var streams: [UInt32: YamuxStreamChannel] = [:]
    private var timer: Scheduled<Void>?
    private var timerStopped = false
    private var needsFlush = false
    private var flushScheduled = false
    /// A read was asked for while the connection was not writable; it happens once it is.
    private var readHeldBack = false
    /// Streams with data that could not go out because the connection was not writable.
    private var waitingForConnection = CircularBuffer<UInt32>()
    private var waitingIDs: Set<UInt32> = []
    /// The round-trip time of the last answered ping.
    public private(set) var lastRoundTripTime: TimeAmount?
    /// Quiesced: no new streams, and the connection closes once its last stream has ended.
    private var quiesced = false
    private var closing = false

    /// - Parameter inboundStreamInitializer: sets up the pipeline of each stream the peer opens;
    ///   nil refuses inbound streams.
    public init(role: YamuxSessionStateMachine.Role, configuration: YamuxConfiguration = YamuxConfiguration(),
                inboundStreamInitializer: StreamInitializer?) {
        self.configuration = configuration
        self.machine = YamuxSessionStateMachine(role: role, configuration: configuration, now: .now())
        self.parser = YamuxFrameParser(maximumPayload: configuration.maximumStreamWindow)
        self.inboundStreamInitializer = inboundStreamInitializer
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        machine = YamuxSessionStateMachine(role: machine.role, configuration: configuration, now: .now())
        if context.channel.isActive { startTimer(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stopTimer()
        perform(machine.connectionClosed())
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        perform(machine.connectionClosed())
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { quiesce() }
        context.fireUserInboundEventTriggered(event)
    }

    /// A graceful end, as NIO servers quiesce: GoAway tells the peer to open no more streams,
    /// every open stream is asked to finish what it is doing (`ChannelShouldQuiesceEvent` on its
    /// pipeline), and the connection closes once the last stream has ended.
    public func quiesce() {
        guard !quiesced else { return }
        quiesced = true
        goAway(.normal)
        for stream in streams.values { stream.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard quiesced, !closing, streams.isEmpty, let context else { return }
        closing = true
        needsFlush = false
        // Closed once the streams' last frames are on the wire: an empty write completes after them.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            drainWaitingStreams()
            if readHeldBack {
                readHeldBack = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// While more than `outputBacklogLimit` of our output waits for the peer, nothing more is read
    /// from it: every frame read may demand an answer (pong, window update, RST), and a peer that
    /// floods without reading must not make those answers pile up here. Stream data cannot get
    /// there by itself (it only leaves while the connection is writable), so ordinary traffic in
    /// both directions never stops both sides' reading at once.
    public func read(context: ChannelHandlerContext) {
        let unsent = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
        guard unsent <= Self.outputBacklogLimit else {
            readHeldBack = true
            return
        }
        context.read()
    }

    /// Unsent output above which reading from the peer pauses.
    static let outputBacklogLimit = 1 << 20

    /// Serves streams whose data waited for the connection, oldest first; a stream that still
    /// has data goes to the back of the line, so no stream can starve the others.
    private func drainWaitingStreams() {
        while let context, context.channel.isWritable, let id = waitingForConnection.popFirst() {
            waitingIDs.remove(id)
            if let stream = streams[id] { drainWrites(of: stream) }
        }
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard timer == nil, !timerStopped else { return }
        scheduleTick(context: context, period: tickPeriod)
    }

    /// A quarter of the shortest keepalive setting, at most a second: timeouts are detected
    /// within a quarter of their length.
    private var tickPeriod: TimeAmount {
        var shortest = configuration.keepAliveTimeout
        if let interval = configuration.keepAliveInterval, interval < shortest { shortest = interval }
        let quarter = TimeAmount.nanoseconds(shortest.nanoseconds / 4)
        return max(.milliseconds(10), min(.seconds(1), quarter))
    }

    private func scheduleTick(context: ChannelHandlerContext, period: TimeAmount) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: period) { [weak self] in
            guard let self, !self.timerStopped else { return }
            self.perform(self.machine.tick(now: .now()))
            self.flushIfNeeded()
            if self.machine.failed == nil { self.scheduleTick(context: context, period: period) }
        }
    }

    private func stopTimer() {
        timerStopped = true
        timer?.cancel()
    }

    // MARK: Inbound bytes

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        while machine.failed == nil {
            let frame: YamuxFrame?
            do {
                frame = try parser.next(from: &received)
            } catch {
                let detail = switch error {
                case .header(.unsupportedVersion(let version)): "unsupported version \(version)"
                case .header(.unknownFrameType(let type)): "unknown frame type \(type)"
                case .payloadTooLarge(let length): "data frame of \(length) bytes exceeds the largest window"
                }
                perform(machine.malformedInput(detail))
                break
            }
            guard let frame else { break }
            perform(machine.receive(frame, now: .now()))
        }
        received.discardReadBytes()
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    // MARK: Opening streams

    /// Opens a stream; must be called on the session's event loop.
    /// - Throws: when the handler is not (or no longer) in a pipeline.
    public func openStream(initializer: StreamInitializer?) throws(YamuxSessionError) -> EventLoopFuture<any Channel> {
        guard let context else { throw .connectionClosed }
        let eventLoop = context.eventLoop
        do {
            let (id, actions) = try machine.openStream(now: .now())
            let stream = YamuxStreamChannel(streamID: id, parent: context.channel, session: self)
            streams[id] = stream
            perform(actions)
            flushIfNeeded()
            return stream.activate(initializer: initializer).assumeIsolated().flatMapError { error in
                self.perform(self.machine.resetStream(id))
                stream.fail(error)
                self.flushIfNeeded()
                return eventLoop.makeFailedFuture(error)
            }.map { stream as any Channel }.nonisolated()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    /// Tells the peer no new streams will be accepted; existing streams continue.
    public func goAway(_ code: YamuxGoAwayCode = .normal) {
        perform(machine.goAway(code))
        flushIfNeeded()
    }

    public var openStreamCount: Int { streams.count }

    /// Streams this side has opened since the session began.
    public var locallyOpenedStreamCount: Int { machine.locallyOpenedStreamCount }

    // MARK: From stream channels

    func drainWrites(of stream: YamuxStreamChannel) {
        let id = stream.streamID
        // Data waits in the stream while the connection is congested, so that pings and window
        // updates are never queued behind megabytes of stream data.
        while stream.hasFlushedWrites {
            guard context?.channel.isWritable == true else {
                if waitingIDs.insert(id).inserted { waitingForConnection.append(id) }
                break
            }
            guard let window = machine.sendWindow(of: id) else {
                // The stream can no longer send (reset, or closed by the session).
                stream.fail(ChannelError.outputClosed)
                return
            }
            // Small writes leave together, as one frame (an HTTP chunk is written as a size line, the
            // data and a CRLF): one header, one parse and one read on the other side, not three.
            if var batch = stream.takeCoalescedWrites(limit: min(Int(window), Self.drainChunk)) {
                let actions = machine.sendData(id, &batch.data)  // it fits the window: all of it goes
                let sent = batch.promises.isEmpty ? nil : context?.eventLoop.makePromise(of: Void.self)
                perform(actions, lastWritePromise: sent)
                if let sent {
                    for promise in batch.promises { sent.futureResult.cascade(to: promise) }
                    if actions.isEmpty { sent.succeed() }
                }
                continue
            }
            guard var chunk = stream.nextWriteChunk(maximum: Self.drainChunk) else { break }
            if window == 0, chunk.readableBytes > 0 { break }
            let length = chunk.readableBytes
            let actions = machine.sendData(id, &chunk)
            let (finished, promise) = stream.sent(length - chunk.readableBytes)
            perform(actions, lastWritePromise: finished ? promise : nil)
            if finished, actions.isEmpty { promise?.succeed() }
        }
        stream.writesMayHaveDrained()
        flushSoon()
    }

    func consumed(_ stream: YamuxStreamChannel, count: Int) {
        perform(machine.consumed(stream.streamID, count: count))
        flushSoon()
    }

    /// Flushes once the event loop has finished what it is doing now: the frames many streams
    /// write while the loop handles one batch of readiness events (say, 64 upstream answers
    /// arriving together) leave in one write to the connection instead of one each.
    private func flushSoon() {
        guard needsFlush, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flushIfNeeded()
        }
    }

    /// The stream's output ends (its lifecycle decided): send FIN.
    func sendFin(_ stream: YamuxStreamChannel) {
        perform(machine.closeStream(stream.streamID, now: .now()))
        flushIfNeeded()
    }

    func resetStream(_ stream: YamuxStreamChannel) {
        perform(machine.resetStream(stream.streamID))
        flushIfNeeded()
    }

    /// The stream's channel closed. Unless it failed, the stream may still be finishing the
    /// protocol (the peer's FIN): what the peer sends until then is acknowledged and dropped.
    func streamChannelFinished(_ stream: YamuxStreamChannel, failed: Bool) {
        if !failed { perform(machine.discardInbound(stream.streamID)) }
        if streams[stream.streamID] === stream { streams[stream.streamID] = nil }
        flushIfNeeded()
        closeIfDrained()
    }

    // MARK: Actions

    private func perform(_ actions: [YamuxSessionStateMachine.Action], lastWritePromise: EventLoopPromise<Void>? = nil) {
        let lastSendIndex = actions.lastIndex { if case .send = $0 { true } else { false } }
        for (index, action) in actions.enumerated() {
            switch action {
            case .send(let frame):
                write(frame, promise: index == lastSendIndex ? lastWritePromise : nil)
            case .inboundStreamOpened(let id):
                openInbound(id)
            case .deliver(let id, let data):
                streams[id]?.receive(data)
            case .streamAcknowledged:
                break
            case .remoteHalfClosed(let id):
                streams[id]?.receiveRemoteFin()
            case .streamClosed(let id):
                streams[id]?.streamEnded()
            case .streamFailed(let id, let error):
                streams[id]?.fail(error)
            case .sendWindowOpened(let id):
                if let stream = streams[id] { drainWrites(of: stream) }
            case .pingAnswered(let rtt):
                lastRoundTripTime = rtt
                context?.fireUserInboundEventTriggered(YamuxPingMeasured(roundTripTime: rtt))
            case .remoteGoAway(let code):
                context?.fireUserInboundEventTriggered(YamuxRemoteWentAway(code: code))
            case .sessionFailed(let error):
                failSession(error)
            case .inboundStreamRefused(let id):
                context?.fireUserInboundEventTriggered(YamuxStreamRefused(streamID: id))
            }
        }
    }

    private func openInbound(_ id: UInt32) {
        guard let context, inboundStreamInitializer != nil else {
            perform(machine.rejectStream(id))
            return
        }
        let stream = YamuxStreamChannel(streamID: id, parent: context.channel, session: self)
        streams[id] = stream
        stream.activate(initializer: inboundStreamInitializer).assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                self.perform(self.machine.acceptStream(id, now: .now()))
            case .failure(let error):
                self.perform(self.machine.rejectStream(id))
                stream.fail(error)
            }
            self.flushIfNeeded()
        }
    }

    private func write(_ frame: YamuxFrame, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        // Header and payload go out as one buffer: under TLS, a separate 12-byte write would
        // become a TLS record of its own for every frame.
        var bytes = context.channel.allocator.buffer(capacity: YamuxFrameHeader.encodedSize + (frame.payload?.readableBytes ?? 0))
        frame.write(to: &bytes)
        context.write(wrapOutboundOut(bytes), promise: promise)
        needsFlush = true
    }

    private func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    private func failSession(_ error: YamuxSessionError) {
        stopTimer()
        flushIfNeeded()
        let children = streams.values
        streams.removeAll()
        for stream in children { stream.fail(error) }
        guard let context else { return }
        if error != .connectionClosed {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}

