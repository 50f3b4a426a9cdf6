public import NIOCore
import Synchronization

/// Write this as a user outbound event to abort a stream with RST instead of closing it cleanly.
public struct YamuxStreamResetEvent: Hashable, Sendable {
    public init() {}
}

/// One yamux stream as a NIO `Channel`, so ordinary handlers (HTTP codecs, TLS, …) run on it.
///
/// All state lives on the parent connection's event loop. Reads follow the channel's demand
/// (`autoRead` or `read()`); data not yet read stays buffered and is not acknowledged to the
/// peer, so a slow reader stalls only its own stream once its window is used up.
public final class YamuxStreamChannel: Channel, ChannelCore, @unchecked Sendable {
    public let streamID: UInt32
    public let eventLoop: any EventLoop
    public let allocator: ByteBufferAllocator
    public var parent: (any Channel)? { parentChannel }

    private let parentChannel: any Channel
    private unowned let session: YamuxSessionHandler
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private let active = Atomic<Bool>(false)
    private let writable = Atomic<Bool>(true)

    private var autoRead = true
    private var allowRemoteHalfClosure = false
    private var unsatisfiedRead = false
    private var pendingReads = CircularBuffer<ByteBuffer>()
    /// Open, half-closed either way, closed: every change goes through it.
    private var lifecycle = YamuxStreamLifecycle()
    private var writes = YamuxStreamWriteQueue()

    init(streamID: UInt32, parent: any Channel, session: YamuxSessionHandler) {
        self.streamID = streamID
        self.parentChannel = parent
        self.session = session
        self.eventLoop = parent.eventLoop
        self.allocator = parent.allocator
        self.closePromise = parent.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    // MARK: Channel

    public var pipeline: ChannelPipeline { _pipeline }
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var localAddress: SocketAddress? { parentChannel.localAddress }
    public var remoteAddress: SocketAddress? { parentChannel.remoteAddress }
    public var isWritable: Bool { writable.load(ordering: .relaxed) }
    public var isActive: Bool { active.load(ordering: .relaxed) }
    public var _channelCore: any ChannelCore { self }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        guard eventLoop.inEventLoop else { return eventLoop.submit { try self.setOption0(option, value: value) } }
        return eventLoop.makeCompletedFuture { try self.setOption0(option, value: value) }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        guard eventLoop.inEventLoop else { return eventLoop.submit { try self.getOption0(option) } }
        return eventLoop.makeCompletedFuture { try self.getOption0(option) }
    }

    private func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            autoRead = value as! Bool
            if autoRead { deliverReads() }
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case is ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption: return allowRemoteHalfClosure as! Option.Value
        default: throw ChannelError.operationUnsupported
        }
    }

    // MARK: ChannelCore

    public func localAddress0() throws -> SocketAddress {
        guard let address = parentChannel.localAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    public func remoteAddress0() throws -> SocketAddress {
        guard let address = parentChannel.remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    public func register0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let refusal = lifecycle.checkWrite() { return promise?.fail(refusal) ?? () }
        writes.append(unwrapData(data, as: ByteBuffer.self), promise: promise)
        updateWritability()
    }

    public func flush0() {
        guard lifecycle.acceptsReads else { return }
        writes.flush()
        session.drainWrites(of: self)
    }

    public func read0() {
        guard lifecycle.acceptsReads else { return }
        unsatisfiedRead = true
        deliverReads()
    }

    public func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            promise?.fail(lifecycle.isClosed ? ChannelError.alreadyClosed : ChannelError.operationUnsupported)
        case .output:
            if let refusal = lifecycle.closeOutput() { return promise?.fail(refusal) ?? () }
            writes.flush()
            session.drainWrites(of: self)
            promise?.succeed()
        case .all:
            switch lifecycle.closeAll() {
            case .failure(let error):
                promise?.fail(error)
            case .success(let actions):
                perform(actions, error: nil)
                promise?.succeed()
            }
        }
    }

    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        guard event is YamuxStreamResetEvent else { return promise?.fail(ChannelError.operationUnsupported) ?? () }
        switch lifecycle.reset() {
        case .failure(let error):
            promise?.fail(error)
        case .success(let actions):
            perform(actions, error: nil)
            promise?.succeed()
        }
    }

    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: any Error) {}

    // MARK: From the session

    /// Runs the initializer, then makes the channel active.
    func activate(initializer: (@Sendable (any Channel) -> EventLoopFuture<Void>)?) -> EventLoopFuture<Void> {
        let configured = initializer?(self) ?? eventLoop.makeSucceededVoidFuture()
        return configured.assumeIsolated().map {
            guard self.lifecycle.activate() else { return }
            self.pipeline.fireChannelRegistered()
            self.active.store(true, ordering: .relaxed)
            self.pipeline.fireChannelActive()
            self.deliverReads()
        }.nonisolated()
    }

    func receive(_ data: ByteBuffer) {
        guard lifecycle.acceptsReads else { return }
        pendingReads.append(data)
        deliverReads()
    }

    /// The peer sent FIN: after the buffered data, the input ends.
    func receiveRemoteFin() {
        lifecycle.receiveFin()
        deliverReads()
    }

    /// The stream ended without error (both FINs).
    func streamEnded() {
        perform(lifecycle.bothEnded(), error: nil)
        deliverReads()
        perform(lifecycle.closeIfBothEnded(), error: nil)
    }

    /// The stream or the session failed: report and close.
    func fail(_ error: any Error) {
        pendingReads.removeAll()
        perform(lifecycle.fail(), error: error)
    }

    // MARK: Writes, as the session takes them

    var hasFlushedWrites: Bool { writes.hasFlushedData }

    /// Up to `maximum` bytes of the first flushed write; they stay queued until `sent`.
    func nextWriteChunk(maximum: Int) -> ByteBuffer? {
        writes.firstChunk(maximum: maximum)
    }

    /// `count` bytes of the first write went out; its promise, when that completed it.
    func sent(_ count: Int) -> (finished: Bool, promise: EventLoopPromise<Void>?) {
        let result = writes.sent(count)
        updateWritability()
        return result
    }

    /// The first flushed writes as one buffer when at least two fit in `limit` bytes.
    func takeCoalescedWrites(limit: Int) -> (data: ByteBuffer, promises: [EventLoopPromise<Void>])? {
        let batch = writes.takeCoalesced(limit: limit, allocator: allocator)
        if batch != nil { updateWritability() }
        return batch
    }

    /// The session sent everything it could; a FIN queued behind the writes leaves once they all did.
    func writesMayHaveDrained() {
        guard writes.isEmpty else { return }
        perform(lifecycle.writesDrained(), error: nil)
    }

    /// Writable while the stream's own queue is short. The connection's state does not enter:
    /// while it is congested, data waits in this queue, which then fills up by itself.
    func updateWritability() {
        let shouldBeWritable = writes.pendingBytes < session.configuration.streamWriteBufferHighWatermark
        if writable.exchange(shouldBeWritable, ordering: .relaxed) != shouldBeWritable, isActive {
            pipeline.fireChannelWritabilityChanged()
        }
    }

    // MARK: Reading

    private func deliverReads() {
        guard isActive, lifecycle.acceptsReads else { return }
        if !pendingReads.isEmpty, autoRead || unsatisfiedRead {
            unsatisfiedRead = false
            var delivered = 0
            while let data = pendingReads.popFirst() {
                delivered += data.readableBytes
                pipeline.fireChannelRead(data)
            }
            pipeline.fireChannelReadComplete()
            session.consumed(self, count: delivered)
        }
        if pendingReads.isEmpty { perform(lifecycle.readsDrained(allowRemoteHalfClosure: allowRemoteHalfClosure), error: nil) }
    }

    // MARK: Carrying out the lifecycle's actions

    private func perform(_ actions: [YamuxStreamLifecycle.Action], error: (any Error)?) {
        for action in actions {
            switch action {
            case .sendFin: session.sendFin(self)
            case .sendReset: session.resetStream(self)
            case .fireInputClosed: pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            case .fireError: pipeline.fireErrorCaught(error ?? ChannelError.ioOnClosedChannel)
            case .finish: finish(error: error)
            }
        }
    }

    private func finish(error: (any Error)?) {
        for promise in writes.removeAll() { promise.fail(error ?? ChannelError.ioOnClosedChannel) }
        let wasActive = active.exchange(false, ordering: .relaxed)
        if wasActive { pipeline.fireChannelInactive() }
        pipeline.fireChannelUnregistered()
        session.streamChannelFinished(self, failed: error != nil)
        eventLoop.assumeIsolated().execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }
}
