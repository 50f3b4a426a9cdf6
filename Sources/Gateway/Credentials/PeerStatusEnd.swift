import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

/// How a status request to a peer instance ended.
enum PeerStatusEnd: Sendable, Equatable {
    /// A one-shot request got its answer.
    case answered
    /// The stream dropped (end of stream, closed connection, timeout): worth reconnecting.
    case dropped(String)
    /// The answer cannot be used (not 200, an invalid frame) or the peer cannot be reached:
    /// reconnecting would only repeat it (§5.5).
    case fatal(String)
}
