import Foundation
import Synchronization
import Yamux
import YamuxFuzzing

// Millions of random and mutated frames through the yamux frame parser and the session state
// machine, for both roles. A crash ends the process (and the run); a hang is caught by a
// watchdog that gives up after 60 s without progress. Prints one summary line for BENCHMARKS.md.
//   YamuxFuzz [frames per role, default 5,000,000] [seed, default 20261206]

let arguments = CommandLine.arguments
let framesPerRole = arguments.count > 1 ? Int(arguments[1]) ?? 5_000_000 : 5_000_000
let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 20_261_206 : 20_261_206

let lastProgress = Atomic<Int64>(Int64(Date().timeIntervalSince1970))
let watchdog = Thread {
    while true {
        Thread.sleep(forTimeInterval: 5)
        if Int64(Date().timeIntervalSince1970) - lastProgress.load(ordering: .relaxed) > 60 {
            print("yamux fuzz: HANG — no progress for 60 s")
            exit(3)
        }
    }
}
watchdog.start()

let started = Date()
var total = YamuxFuzzer.Outcome()
var slowestBatch = 0.0
for (index, role) in [YamuxSessionStateMachine.Role.client, .server].enumerated() {
    var fuzzer = YamuxFuzzer(seed: seed &+ UInt64(index))
    var batchStart = Date()
    let outcome = fuzzer.run(role: role, frames: framesPerRole) { _ in
        lastProgress.store(Int64(Date().timeIntervalSince1970), ordering: .relaxed)
        slowestBatch = max(slowestBatch, Date().timeIntervalSince(batchStart))
        batchStart = Date()
    }
    total.frames += outcome.frames
    total.failures += outcome.failures
    total.noisyAfterFailure += outcome.noisyAfterFailure
}
let seconds = Date().timeIntervalSince(started)
print(String(format: "yamux fuzz: %d frames (seed %llu) in %.1f s, %d sessions failed and restarted (%.1f frames each), 0 crashes, "
    + "0 hangs (slowest 100,000 frames: %.2f s), %d actions from failed sessions", total.frames, seed, seconds, total.failures,
    Double(total.frames) / Double(max(1, total.failures)), slowestBatch, total.noisyAfterFailure))
exit(total.noisyAfterFailure == 0 ? 0 : 1)
