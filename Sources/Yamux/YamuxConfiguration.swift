public import NIOCore

/// Session parameters. The defaults follow the reference instances (sing-box OCM on hashicorp/yamux).
public struct YamuxConfiguration: Hashable, Sendable {
    /// Every stream starts with this window in both directions (fixed by the protocol).
    public static let initialStreamWindow: UInt32 = 256 * 1024

    /// Inbound streams not yet accepted by the application beyond this are reset.
    public var acceptBacklog = 256
    /// Inbound streams open at once beyond this are reset: a peer cannot make this side hold
    /// unbounded stream state (the reference has no such cap).
    public var maximumInboundStreams = 16_384
    /// The receive window this side grows each stream to; at least the initial 256 KiB.
    public var maximumStreamWindow: UInt32 = 512 * 1024
    /// How often to ping; nil turns keepalive off.
    public var keepAliveInterval: TimeAmount? = .seconds(15)
    /// How long a ping may go unanswered before the session is declared dead.
    public var keepAliveTimeout: TimeAmount = .seconds(10)
    /// How long an opened stream may wait for the peer's ACK before it is reset.
    public var streamOpenTimeout: TimeAmount = .seconds(75)
    /// How long a stream may stay half-closed by us before it is reset.
    public var streamCloseTimeout: TimeAmount = .minutes(5)
    /// Buffered outbound bytes per stream above which the stream channel reports not writable.
    public var streamWriteBufferHighWatermark = 256 * 1024

    public init() {}
}
