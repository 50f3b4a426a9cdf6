import Configuration
import Foundation
import Logging
import NIOCore
import NIOPosix
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP
import Yamux

/// The reference's reconnect schedule (§6.6), for the connector and for status streams: the
/// delay after each lost session or failed attempt, starting over after a session that lived
/// a minute or more.
struct ReconnectBackoff {
    private var failures = 0

    mutating func delay(afterSessionStartedAt started: ContinuousClock.Instant) -> Duration {
        if ContinuousClock.now - started >= .seconds(60) { failures = 0 }
        failures += 1
        return Self.delay(failures: failures)
    }

    /// The delay before reconnect attempt `failures` (1, 2, …): 2, 4, 8, 16, then 30 s, each plus
    /// up to half of it again as jitter.
    static func delay(failures: Int, jitter: Double = Double.random(in: 0..<1)) -> Duration {
        let base = min(pow(2, Double(min(failures, 5))), 30)
        return .milliseconds(Int64((base + base / 2 * jitter) * 1000))
    }
}
