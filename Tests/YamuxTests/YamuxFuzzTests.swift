import NIOCore
import Testing
import Yamux
import YamuxFuzzing

/// Random and mutated input for the frame parser and the session state machine: nothing may
/// crash, and a session that failed must stay failed and quiet.
@Suite(.timeLimit(.minutes(2))) struct YamuxFuzzTests {
    @Test(arguments: [YamuxSessionStateMachine.Role.client, .server])
    func randomAndMutatedFramesNeverCrash(role: YamuxSessionStateMachine.Role) {
        var fuzzer = YamuxFuzzer(seed: role == .client ? 1 : 2)
        let outcome = fuzzer.run(role: role, frames: 100_000)
        #expect(outcome.frames >= 100_000)
        #expect(outcome.failures > 0, "the input did reach failure paths")
        #expect(outcome.noisyAfterFailure == 0, "a failed session stays quiet")
    }

    /// Pure noise straight into the parser, 250,000 bytes at a time. (Swift Testing records a
    /// backtrace for every thrown error, which makes each parse error costly here.)
    @Test func noiseIntoTheParser() {
        var fuzzer = YamuxFuzzer(seed: 3)
        var parsed = 0, errors = 0
        for _ in 0..<4 {
            var parser = YamuxFrameParser(maximumPayload: 512 * 1024)
            var buffer = fuzzer.randomSlice(250_000)
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
