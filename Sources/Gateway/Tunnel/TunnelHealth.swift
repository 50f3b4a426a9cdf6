public import Foundation
public import NIOCore
import PoolCore
import Synchronization
import Yamux

/// What an operator wants to know about a credential's reverse session (either side): is it up,
/// since when, how fast does the peer answer, how often did it drop.
public struct TunnelHealth: Hashable, Sendable {
    public var online: Bool
    /// When it last came up or went down.
    public var since: Date
    /// The round-trip time of the session's last answered keepalive ping.
    public var lastRoundTrip: TimeAmount?
    /// Sessions lost so far.
    public var disconnects: Int

    /// As `/ocm/v1/status?detail=true` reports it.
    var operatorView: OperatorStatus.Tunnel {
        OperatorStatus.Tunnel(online: online, since: since, roundTripMilliseconds: lastRoundTrip.map { Double($0.nanoseconds) / 1e6 },
                              disconnects: disconnects)
    }
}

/// The reverse sessions' health by credential tag, written by the receiver and the connector.
final class TunnelHealthBoard: Sendable {
    private let entries = Mutex<[String: TunnelHealth]>([:])

    var all: [String: TunnelHealth] { entries.withLock { $0 } }

    func online(_ tag: String, at now: Date) {
        entries.withLock { entries in
            let disconnects = entries[tag]?.disconnects ?? 0
            entries[tag] = TunnelHealth(online: true, since: now, lastRoundTrip: nil, disconnects: disconnects)
        }
    }

    /// - Returns: how long the session had been up.
    @discardableResult
    func offline(_ tag: String, at now: Date) -> TimeInterval? {
        entries.withLock { entries in
            guard let previous = entries[tag], previous.online else { return nil }
            entries[tag] = TunnelHealth(online: false, since: now, lastRoundTrip: previous.lastRoundTrip, disconnects: previous.disconnects + 1)
            return now.timeIntervalSince(previous.since)
        }
    }

    func roundTrip(_ tag: String, _ rtt: TimeAmount) {
        entries.withLock { $0[tag]?.lastRoundTrip = rtt }
    }
}

/// Reports what the yamux session tells about its peer: keepalive round trips, and a GoAway
/// (the peer is shutting down and opens or accepts no more streams).
final class TunnelSessionObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let roundTrip: @Sendable (TimeAmount) -> Void
    private let wentAway: @Sendable (YamuxGoAwayCode) -> Void
    private let refusedStream: @Sendable () -> Void

    init(roundTrip: @escaping @Sendable (TimeAmount) -> Void, wentAway: @escaping @Sendable (YamuxGoAwayCode) -> Void,
         refusedStream: @escaping @Sendable () -> Void = {}) {
        self.roundTrip = roundTrip
        self.wentAway = wentAway
        self.refusedStream = refusedStream
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let ping = event as? YamuxPingMeasured { roundTrip(ping.roundTripTime) }
        if let goAway = event as? YamuxRemoteWentAway { wentAway(goAway.code) }
        if event is YamuxStreamRefused { refusedStream() }
        context.fireUserInboundEventTriggered(event)
    }
}
