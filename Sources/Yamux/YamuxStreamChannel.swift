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
    private var remoteFinished = false
    private var deliveredRemoteFin = false
    private(set) var outputClosed = false
    private var closed = false

    struct PendingWrite {
        var data: ByteBuffer
        var promise: EventLoopPromise<Void>?
    }

    var pendingWrites = CircularBuffer<PendingWrite>()
    /// The first this many pending writes were flushed and may go out. A count, not a flag per
    /// write: a flush must not walk a queue that can hold thousands of writes.
    var flushedWrites = 0
    private var pendingWriteBytes = 0
    /// close(mode: .output) arrived while writes were queued: send FIN once they are out.
    var finAfterWrites = false

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
        guard !closed else { return promise?.fail(ChannelError.ioOnClosedChannel) ?? () }
        guard !outputClosed, !finAfterWrites else { return promise?.fail(ChannelError.outputClosed) ?? () }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        pendingWrites.append(PendingWrite(data: buffer, promise: promise))
        pendingWriteBytes += buffer.readableBytes
        updateWritability()
    }

    public func flush0() {
        guard !closed else { return }
        flushedWrites = pendingWrites.count
        session.drainWrites(of: self)
    }

    public func read0() {
        guard !closed else { return }
        unsatisfiedRead = true
        deliverReads()
    }

    public func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !closed else { return promise?.fail(ChannelError.alreadyClosed) ?? () }
        switch mode {
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .output:
            guard !outputClosed, !finAfterWrites else { return promise?.fail(ChannelError.outputClosed) ?? () }
            flushedWrites = pendingWrites.count
            finAfterWrites = true
            session.drainWrites(of: self)
            promise?.succeed()
        case .all:
            session.streamChannelClosed(self)
            finish(error: nil)
            promise?.succeed()
        }
    }

    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        guard event is YamuxStreamResetEvent else { return promise?.fail(ChannelError.operationUnsupported) ?? () }
        guard !closed else { return promise?.fail(ChannelError.alreadyClosed) ?? () }
        session.resetStream(self)
        finish(error: nil)
        promise?.succeed()
    }

    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: any Error) {}

    // MARK: From the session

    /// Runs the initializer, then makes the channel active.
    func activate(initializer: (@Sendable (any Channel) -> EventLoopFuture<Void>)?) -> EventLoopFuture<Void> {
        let configured = initializer?(self) ?? eventLoop.makeSucceededVoidFuture()
        return configured.assumeIsolated().map {
            guard !self.closed else { return }
            self.pipeline.fireChannelRegistered()
            self.active.store(true, ordering: .relaxed)
            self.pipeline.fireChannelActive()
            self.deliverReads()
        }.nonisolated()
    }

    func receive(_ data: ByteBuffer) {
        guard !closed else { return }
        pendingReads.append(data)
        if isActive { deliverReads() }
    }

    /// The peer sent FIN: after the buffered data, the input ends.
    func receiveRemoteFin() {
        remoteFinished = true
        if isActive { deliverReads() }
    }

    /// The stream ended without error (both FINs).
    func streamEnded() {
        remoteFinished = true
        if isActive { deliverReads() }
        if outputClosed, !closed { finish(error: nil) }
    }

    /// The stream or the session failed: report and close.
    func fail(_ error: any Error) {
        guard !closed else { return }
        pendingReads.removeAll()
        if isActive { pipeline.fireErrorCaught(error) }
        finish(error: error)
    }

    func markOutputClosed() {
        outputClosed = true
        finAfterWrites = false
        if deliveredRemoteFin, !closed { finish(error: nil) }
    }

    /// Takes written bytes off the queue accounting; the session calls it as data leaves.
    func dequeued(bytes: Int) {
        pendingWriteBytes -= bytes
        updateWritability()
    }

    /// Writable while the stream's own queue is short. The connection's state does not enter:
    /// while it is congested, data waits in this queue, which then fills up by itself.
    func updateWritability() {
        let shouldBeWritable = pendingWriteBytes < session.configuration.streamWriteBufferHighWatermark
        if writable.exchange(shouldBeWritable, ordering: .relaxed) != shouldBeWritable, isActive {
            pipeline.fireChannelWritabilityChanged()
        }
    }

    // MARK: Reading

    private func deliverReads() {
        guard isActive, !closed else { return }
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
        if remoteFinished, pendingReads.isEmpty, !deliveredRemoteFin, !closed {
            deliveredRemoteFin = true
            if allowRemoteHalfClosure, !outputClosed {
                pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else {
                session.streamChannelClosed(self)
                finish(error: nil)
            }
        }
    }

    // MARK: Closing

    private func finish(error: (any Error)?) {
        guard !closed else { return }
        closed = true
        let writes = pendingWrites
        pendingWrites.removeAll()
        flushedWrites = 0
        pendingWriteBytes = 0
        for write in writes { write.promise?.fail(error ?? ChannelError.ioOnClosedChannel) }
        let wasActive = active.exchange(false, ordering: .relaxed)
        if wasActive { pipeline.fireChannelInactive() }
        pipeline.fireChannelUnregistered()
        session.streamChannelFinished(self)
        eventLoop.assumeIsolated().execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }
}
