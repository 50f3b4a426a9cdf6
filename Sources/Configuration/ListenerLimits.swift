import Foundation

/// Caps and timeouts of the listener, for a server on a public address (`limits:`). Every
/// refusal they cause is an OpenAI-shaped JSON error and a metric.
public struct ListenerLimits: Hashable, Sendable {
    /// Request line plus headers, in bytes; beyond it: 431. (The HTTP parser itself stops at 80 KiB.)
    public var maxHeaderBytes: Int
    /// Request body, in bytes; beyond it: 413 (before the body is read when Content-Length says so).
    public var maxBody: Int
    /// One WebSocket message (after reassembly and decompression), in bytes.
    public var maxWebSocketMessage: Int
    /// Seconds for a request's headers to arrive once its first byte did (slowloris): then 408 and close.
    public var headerTimeout: Double
    /// Seconds a keep-alive connection may wait for its next request before it is closed.
    public var idleTimeout: Double
    /// Open client connections; beyond it a new one gets 503 and is closed.
    public var maxConnections: Int
    /// Failed authentications per client address and minute; beyond it: 429 with Retry-After
    /// for every request from that address until the minute is over.
    public var failedAuthenticationsPerMinute: Int
    /// Streams a tunnel peer may have open at once (each WebSocket session or request through a
    /// connector is one); beyond it new ones are reset.
    public var maxTunnelStreams: Int

    public init(maxHeaderBytes: Int = 64 << 10, maxBody: Int = 32 << 20, maxWebSocketMessage: Int = 32 << 20,
                headerTimeout: Double = 15, idleTimeout: Double = 120, maxConnections: Int = 4096,
                failedAuthenticationsPerMinute: Int = 20, maxTunnelStreams: Int = 16_384) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBody = maxBody
        self.maxWebSocketMessage = maxWebSocketMessage
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.failedAuthenticationsPerMinute = failedAuthenticationsPerMinute
        self.maxTunnelStreams = maxTunnelStreams
    }

    /// The YAML keys, in the order the README lists them.
    static let keys = ["max_header_bytes", "max_body", "max_websocket_message", "header_timeout", "idle_timeout", "max_connections",
                       "failed_auth_per_minute",
                       "max_tunnel_streams"]
}

/// Sizes and durations as the configuration spells them.
enum ConfigurationQuantity {
    /// `32MiB`, `64KiB`, `1GiB`, `500KB`, `1048576` (bytes); nil when not a size.
    static func bytes(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1_000_000_000), ("MB", 1_000_000),
                                      ("KB", 1000), ("B", 1)]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let number = Int(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number >= 0 else { return nil }
            return number.multipliedReportingOverflow(by: factor).overflow ? nil : number * factor
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// `15s`, `2m`, `1h`, `500ms`, `30` (seconds); nil when not a duration.
    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number >= 0, number.isFinite else {
                return nil
            }
            return number * factor
        }
        return Double(trimmed).flatMap { $0 >= 0 && $0.isFinite ? $0 : nil }
    }
}
