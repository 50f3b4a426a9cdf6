public import NIOCore

/// Fired inbound on the session's (parent) channel when a keepalive ping is answered.
public struct YamuxPingMeasured: Hashable, Sendable {
    public var roundTripTime: TimeAmount
}

/// Fired inbound on the session's channel when the peer sends GoAway.
public struct YamuxRemoteWentAway: Hashable, Sendable {
    public var code: YamuxGoAwayCode
}

/// Fired inbound on the session's channel when the peer opened more streams than
/// `YamuxConfiguration.maximumInboundStreams`; the stream was reset.
public struct YamuxStreamRefused: Hashable, Sendable {
    public var streamID: UInt32
}
