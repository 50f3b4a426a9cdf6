import NIOCore
import Testing
import Yamux

/// Random and mutated input for the frame parser and the session state machine: nothing may
/// crash, and a session that failed must stay failed and quiet.
@Suite struct YamuxFuzzTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// 4 MiB of random bytes, made eight at a time; payloads and noise are slices of it. Each
    /// test case makes its own: cases run in parallel, and sharing one buffer's storage would
    /// make every slice an atomic reference-count operation on the same cache line.
    let pool: ByteBuffer = {
        var random = Generator(state: 99)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(4 << 20)
        for _ in 0..<(512 * 1024) { buffer.writeInteger(random.next()) }
        return buffer
    }()

    func randomSlice(_ length: Int, _ random: inout Generator) -> ByteBuffer {
        let offset = Int.random(in: 0...(pool.readableBytes - length), using: &random)
        return pool.getSlice(at: offset, length: length)!
    }

    /// Appends a plausible frame to `bytes`: mostly valid fields from small ranges, so the state
    /// machine gets deep, with an occasional odd value; sometimes mutated afterwards.
    func appendPlausibleFrame(to bytes: inout ByteBuffer, _ random: inout Generator) {
        let start = bytes.writerIndex
        let odd = Int.random(in: 0..<16, using: &random) == 0
        let type = UInt8.random(in: 0...3, using: &random)
        let length: UInt32 = type == 0 ? UInt32.random(in: 0...300, using: &random) : UInt32.random(in: 0...(odd ? 1 << 31 : 1 << 18), using: &random)
        bytes.writeInteger(UInt8(0))
        bytes.writeInteger(type)
        bytes.writeInteger(UInt16.random(in: 0...(odd ? 15 : 3), using: &random))
        bytes.writeInteger(UInt32.random(in: (odd ? 0 : 1)...8, using: &random))
        bytes.writeInteger(length)
        if type == 0 {
            var payload = randomSlice(Int(length), &random)
            bytes.writeBuffer(&payload)
        }
        if Int.random(in: 0..<4, using: &random) == 0 { mutate(&bytes, from: start, &random) }
    }

    /// Flips a bit, overwrites a byte, or cuts the end off, within the bytes written since `start`.
    func mutate(_ bytes: inout ByteBuffer, from start: Int, _ random: inout Generator) {
        let count = bytes.writerIndex - start
        guard count > 0 else { return }
        let index = start + Int.random(in: 0..<count, using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: bytes.setInteger(bytes.getInteger(at: index, as: UInt8.self)! ^ UInt8(1 << Int.random(in: 0..<8, using: &random)), at: index)
        case 1: bytes.setInteger(UInt8.random(in: 0...255, using: &random), at: index)
        default: bytes.moveWriterIndex(to: bytes.writerIndex - min(count, Int.random(in: 1...8, using: &random)))
        }
    }

    @Test(arguments: [YamuxSessionStateMachine.Role.client, .server])
    func randomAndMutatedFramesNeverCrash(role: YamuxSessionStateMachine.Role) {
        var random = Generator(state: role == .client ? 1 : 2)
        var configuration = YamuxConfiguration()
        configuration.acceptBacklog = 8
        var now = NIODeadline.uptimeNanoseconds(1)
        var machine = YamuxSessionStateMachine(role: role, configuration: configuration, now: now)
        var parser = YamuxFrameParser(maximumPayload: configuration.maximumStreamWindow)
        var pending = ByteBuffer()
        var frames = 0, failures = 0, noisyAfterFailure = 0

        func restart() {
            machine = YamuxSessionStateMachine(role: role, configuration: configuration, now: now)
            parser = YamuxFrameParser(maximumPayload: configuration.maximumStreamWindow)
            pending.clear()
            failures += 1
        }

        while frames < 100_000 {
            if Int.random(in: 0..<10, using: &random) == 0 {
                var noise = randomSlice(Int.random(in: 1...40, using: &random), &random)
                pending.writeBuffer(&noise)
            } else {
                appendPlausibleFrame(to: &pending, &random)
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
                frames += 1
                let actions = machine.receive(frame, now: now)
                for case .inboundStreamOpened(let id) in actions {
                    _ = Bool.random(using: &random) ? machine.acceptStream(id, now: now) : machine.rejectStream(id)
                }
                if machine.failed != nil {
                    if !machine.receive(frame, now: now).isEmpty { noisyAfterFailure += 1 }
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
                var data = randomSlice(Int.random(in: 0...100_000, using: &random), &random)
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
        }
        #expect(frames >= 100_000)
        #expect(failures > 0, "the input did reach failure paths")
        #expect(noisyAfterFailure == 0, "a failed session stays quiet")
    }

    /// Pure noise straight into the parser, 250,000 bytes at a time. (Swift Testing records a
    /// backtrace for every thrown error, which makes each parse error costly here.)
    @Test func noiseIntoTheParser() {
        var random = Generator(state: 3)
        var parsed = 0, errors = 0
        for _ in 0..<4 {
            var parser = YamuxFrameParser(maximumPayload: 512 * 1024)
            var buffer = randomSlice(250_000, &random)
            while buffer.readableBytes > 0 {
                do {
                    guard try parser.next(from: &buffer) != nil else { break }
                    parsed += 1
                } catch {
                    errors += 1
                    parser = YamuxFrameParser(maximumPayload: 512 * 1024)
                    buffer.moveReaderIndex(forwardBy: min(1, buffer.readableBytes))
                }
            }
        }
        #expect(parsed + errors > 50_000)
    }
}
