import NIOCore

/// The protocol state of one stream: its phase and both flow-control windows.
struct YamuxStreamState: Hashable, Sendable {
    enum Phase: Hashable, Sendable {
        /// We sent SYN; the peer has not acknowledged yet. Sending is already allowed.
        case synSent
        /// The peer sent SYN; the application has not accepted the stream yet.
        case synReceived
        case established
        /// We sent FIN: we send nothing more, the peer still may.
        case localClosed
        /// The peer sent FIN: it sends nothing more, we still may.
        case remoteClosed
    }

    let id: UInt32
    var phase: Phase
    /// Bytes we may still send before the peer grants more.
    var sendWindow: UInt32 = YamuxConfiguration.initialStreamWindow
    /// Bytes the peer may still send before we grant more.
    var receiveWindow: UInt32 = YamuxConfiguration.initialStreamWindow
    /// Received bytes the application has not consumed yet.
    var unconsumed: UInt32 = 0
    /// When the current phase began, for open and close timeouts.
    var phaseStartedAt: NIODeadline
    /// The application closed its channel: incoming data is consumed and dropped.
    var discardsInbound = false

    var canSend: Bool {
        phase == .synSent || phase == .established || phase == .remoteClosed
    }

    var canReceive: Bool {
        phase == .synSent || phase == .synReceived || phase == .established || phase == .localClosed
    }

    /// The window update this side should send now, if any (hashicorp/yamux's rule: grow the
    /// window back to the maximum once at least half of it has been consumed, or whenever
    /// flags must be carried anyway).
    mutating func windowUpdate(maximum: UInt32, flags: YamuxFrameHeader.Flags) -> YamuxFrame? {
        let target = maximum > unconsumed ? maximum - unconsumed : 0
        let delta = target > receiveWindow ? target - receiveWindow : 0
        guard delta >= maximum / 2 || !flags.isEmpty else { return nil }
        receiveWindow += delta
        return .windowUpdate(id, delta: delta, flags: flags)
    }
}
