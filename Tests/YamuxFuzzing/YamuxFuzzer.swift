public import NIOCore
import PoolCore
public import Yamux

/// Random and mutated yamux input, driven through the frame parser and the session state
/// machine with application activity in between: shared by the fuzz test (a short run) and the
/// `YamuxFuzz` executable (millions of frames).
public struct YamuxFuzzer {
    public struct Outcome: Sendable {
        public var frames = 0
        /// Sessions that failed (a protocol violation or malformed input) and were started afresh.
        public var failures = 0
        /// Failed sessions that still produced actions for more input (must stay 0).
        public var noisyAfterFailure = 0

        public init() {}
    }

    /// 4 MiB of random bytes, made eight at a time; payloads and noise are slices of it.
    private let pool: ByteBuffer
    private var random: SplitMix64

    public init(seed: UInt64) {
        var random = SplitMix64(seed: seed &+ 99)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(4 << 20)
        for _ in 0..<(512 * 1024) { buffer.writeInteger(random.next()) }
        pool = buffer
        self.random = SplitMix64(seed: seed)
    }

    public mutating func randomSlice(_ length: Int) -> ByteBuffer {
        let offset = Int.random(in: 0...(pool.readableBytes - length), using: &random)
        return pool.getSlice(at: offset, length: length)!
    }

    /// Streams the peer (this fuzzer) opened in the current session, so most frames are about
    /// streams that exist and sessions live long enough to reach deep states.
    private var opened: Set<UInt32> = []

    /// Appends a plausible frame: mostly the peer's own streams with the right flags, from small
    /// ranges, with an occasional odd value; sometimes mutated afterwards.
    public mutating func appendPlausibleFrame(to bytes: inout ByteBuffer, peerParity: UInt32 = 1) {
        let start = bytes.writerIndex
        let odd = Int.random(in: 0..<16, using: &random) == 0
        // Mostly data and window updates; GoAway, which ends a session, is rare.
        let type: UInt8 = switch Int.random(in: 0..<32, using: &random) {
        case 0..<14: 0
        case 14..<28: 1
        case 28..<31: 2
        default: 3
        }
        let length: UInt32 = type == 0 ? UInt32.random(in: 0...300, using: &random) : UInt32.random(in: 0...(odd ? 1 << 31 : 1 << 18), using: &random)
        var flags = UInt16.random(in: 0...(odd ? 15 : 3), using: &random)
        var streamID = UInt32.random(in: (odd ? 0 : 1)...8, using: &random)
        if !odd, type >= 2 {
            // Pings and GoAway belong to stream 0; a ping asks (SYN) or answers (ACK).
            streamID = 0
            flags = type == 2 ? UInt16.random(in: 1...2, using: &random) : 0
        } else if !odd, Int.random(in: 0..<16, using: &random) != 0 {
            // One of the peer's streams (1, 3, 5 … or 2, 4, 6 …); SYN the first time.
            streamID = 2 * UInt32.random(in: 0..<8, using: &random) + (peerParity == 1 ? 1 : 2)
            flags = opened.insert(streamID).inserted ? 1 : (Int.random(in: 0..<16, using: &random) == 0 ? 4 : 0)
        }
        bytes.writeInteger(UInt8(0))
        bytes.writeInteger(type)
        bytes.writeInteger(flags)
        bytes.writeInteger(streamID)
        bytes.writeInteger(length)
        if type == 0 {
            var payload = randomSlice(Int(length))
            bytes.writeBuffer(&payload)
        }
        if Int.random(in: 0..<32, using: &random) == 0 { mutate(&bytes, from: start) }
    }

    /// Flips a bit, overwrites a byte, or cuts the end off, within the bytes written since `start`.
    mutating func mutate(_ bytes: inout ByteBuffer, from start: Int) {
        let count = bytes.writerIndex - start
        guard count > 0 else { return }
        let index = start + Int.random(in: 0..<count, using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: bytes.setInteger(bytes.getInteger(at: index, as: UInt8.self)! ^ UInt8(1 << Int.random(in: 0..<8, using: &random)), at: index)
        case 1: bytes.setInteger(UInt8.random(in: 0...255, using: &random), at: index)
        default: bytes.moveWriterIndex(to: bytes.writerIndex - min(count, Int.random(in: 1...8, using: &random)))
        }
    }

    /// Feeds at least `frames` parsed frames (plus noise) to a session of `role`, restarting it
    /// after every failure; `progress` is called every 100,000 frames.
    public mutating func run(role: YamuxSessionStateMachine.Role, frames target: Int, progress: (Int) -> Void = { _ in }) -> Outcome {
        var configuration = YamuxConfiguration()
        configuration.acceptBacklog = 8
        configuration.maximumInboundStreams = 16
        var now = NIODeadline.uptimeNanoseconds(1)
        var machine = YamuxSessionStateMachine(role: role, configuration: configuration, now: now)
        var parser = YamuxFrameParser(maximumPayload: configuration.maximumStreamWindow)
        var pending = ByteBuffer()
        var outcome = Outcome()
        var nextReport = 100_000

        // The fuzzer plays the other side: a server's peer opens odd streams, a client's even ones.
        let peerParity: UInt32 = role == .server ? 1 : 0
        opened = []

        func restart() {
            opened = []
            machine = YamuxSessionStateMachine(role: role, configuration: configuration, now: now)
            parser = YamuxFrameParser(maximumPayload: configuration.maximumStreamWindow)
            pending.clear()
            outcome.failures += 1
        }

        while outcome.frames < target {
            if Int.random(in: 0..<40, using: &random) == 0 {
                var noise = randomSlice(Int.random(in: 1...40, using: &random))
                pending.writeBuffer(&noise)
            } else {
                appendPlausibleFrame(to: &pending, peerParity: peerParity)
            }
            while true {
                let frame: YamuxFrame?
                do {
                    frame = try parser.next(from: &pending)
                } catch {
                    _ = machine.malformedInput("fuzz")
                    restart()
                    break
                }
                guard let frame else { break }
                outcome.frames += 1
                let actions = machine.receive(frame, now: now)
                for case .inboundStreamOpened(let id) in actions {
                    _ = Bool.random(using: &random) ? machine.acceptStream(id, now: now) : machine.rejectStream(id)
                }
                if machine.failed != nil {
                    if !machine.receive(frame, now: now).isEmpty { outcome.noisyAfterFailure += 1 }
                    restart()
                    break
                }
            }
            pending.discardReadBytes()
            // Application activity in between.
            let stream = UInt32.random(in: 1...9, using: &random)
            switch Int.random(in: 0..<8, using: &random) {
            case 0: _ = try? machine.openStream(now: now)
            case 1:
                var data = randomSlice(Int.random(in: 0...100_000, using: &random))
                _ = machine.sendData(stream, &data)
            case 2: _ = machine.consumed(stream, count: Int.random(in: 0...300_000, using: &random))
            case 3: _ = machine.closeStream(stream, now: now)
            case 4: _ = machine.resetStream(stream)
            case 5: _ = machine.discardInbound(stream)
            case 6:
                now = now + .milliseconds(Int64.random(in: 0...20_000, using: &random))
                _ = machine.tick(now: now)
            default: break
            }
            if outcome.frames >= nextReport {
                progress(outcome.frames)
                nextReport += 100_000
            }
        }
        return outcome
    }
}
