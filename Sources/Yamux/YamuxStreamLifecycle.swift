import NIOCore

/// The life of one stream's channel, from the application's side (the session state machine
/// keeps the protocol's side: windows, SYN/ACK, timeouts). Pure: it holds no buffers and does no
/// I/O; each event returns what the channel must do, and an event that does not fit the current
/// state returns the error the application gets (or nothing, when it is simply late).
///
/// ```
/// initializing ──activate──▶ open ──closeOutput──▶ output: finQueued ──writesDrained──▶ finSent
///                              │                                                        │
///                          peer FIN ─▶ input: finReceived ──readsDrained──▶ finDelivered │
///                                         (half-closure allowed and output open: inputClosed event;
///                                          otherwise the channel closes, sending FIN if still due)
/// any state ──close / reset / fail──▶ closed        both FINs out and in ──▶ closed
/// ```
struct YamuxStreamLifecycle: Hashable, Sendable {
    /// Our direction.
    enum Output: Hashable, Sendable {
        case open
        /// `close(mode: .output)`: FIN goes out after the writes queued before it.
        case finQueued
        case finSent
    }

    /// The peer's direction.
    enum Input: Hashable, Sendable {
        case open
        /// The peer's FIN arrived; data before it may still be buffered.
        case finReceived
        /// The application saw the end of input.
        case finDelivered
    }

    /// What the channel must do.
    enum Action: Hashable, Sendable {
        /// Send our FIN now.
        case sendFin
        /// Abort the stream with RST.
        case sendReset
        /// Tell the pipeline its input ended (`ChannelEvent.inputClosed`).
        case fireInputClosed
        /// Fire the error on the pipeline before closing.
        case fireError
        /// Close the channel: fail queued writes, go inactive, complete `closeFuture`.
        case finish
    }

    private(set) var isActive = false
    private(set) var isClosed = false
    private(set) var output = Output.open
    private(set) var input = Input.open

    /// Reads and flushes are ignored once closed.
    var acceptsReads: Bool { !isClosed }

    /// The initializer finished: the channel becomes active (false when it closed meanwhile or
    /// was already active).
    mutating func activate() -> Bool {
        guard !isClosed, !isActive else { return false }
        isActive = true
        return true
    }

    /// A write from the application: nil when accepted, else why not.
    func checkWrite() -> ChannelError? {
        if isClosed { return .ioOnClosedChannel }
        if output != .open { return .outputClosed }
        return nil
    }

    /// `close(mode: .output)`: FIN is queued behind the writes before it; nil when accepted,
    /// else why not.
    mutating func closeOutput() -> ChannelError? {
        if isClosed { return .alreadyClosed }
        if output != .open { return .outputClosed }
        output = .finQueued
        return nil
    }

    /// The queued writes have all left: a queued FIN goes out now.
    mutating func writesDrained() -> [Action] {
        guard !isClosed, output == .finQueued else { return [] }
        output = .finSent
        // The peer's end was already delivered: nothing is left in either direction.
        if input == .finDelivered { return [.sendFin] + close() }
        return [.sendFin]
    }

    /// The peer sent FIN; it reaches the application after the buffered data.
    mutating func receiveFin() {
        guard !isClosed, input == .open else { return }
        input = .finReceived
    }

    /// The buffered input is all read: the peer's FIN, if any, reaches the application now.
    mutating func readsDrained(allowRemoteHalfClosure: Bool) -> [Action] {
        guard isActive, !isClosed, input == .finReceived else { return [] }
        input = .finDelivered
        if allowRemoteHalfClosure, output == .open { return [.fireInputClosed] }
        return (output == .finSent ? [] : [.sendFin]) + close()
    }

    /// The session saw both FINs: the stream is over once the input was read.
    mutating func bothEnded() -> [Action] {
        guard !isClosed else { return [] }
        if input == .open { input = .finReceived }
        return []
    }

    /// After `bothEnded` and draining the reads: close if our output is done too.
    mutating func closeIfBothEnded() -> [Action] {
        guard !isClosed, output == .finSent, input != .open else { return [] }
        return close()
    }

    /// `close(mode: .all)` from the application: FIN unless it went already, then closed.
    mutating func closeAll() -> Result<[Action], ChannelError> {
        if isClosed { return .failure(.alreadyClosed) }
        return .success((output == .finSent ? [] : [.sendFin]) + close())
    }

    /// The application asked for RST (`YamuxStreamResetEvent`).
    mutating func reset() -> Result<[Action], ChannelError> {
        if isClosed { return .failure(.alreadyClosed) }
        return .success([.sendReset] + close())
    }

    /// The stream or the session failed (reset by the peer, timeout, connection lost).
    mutating func fail() -> [Action] {
        guard !isClosed else { return [] }
        return (isActive ? [.fireError] : []) + close()
    }

    private mutating func close() -> [Action] {
        isClosed = true
        return [.finish]
    }
}
