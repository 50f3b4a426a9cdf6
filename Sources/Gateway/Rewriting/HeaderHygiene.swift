public import NIOHTTP1
import PoolCore

/// Which headers must not cross the proxy (ocm-reference.md §6.7).
///
/// Hop-by-hop headers describe one connection, front-proxy headers (Cloudflare, X-Forwarded-*)
/// describe one hop and would leak client addresses or confuse the next hop, and client
/// credentials are replaced by the pool's own.
public enum HeaderHygiene {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
    ]
    static let frontProxy: Set<String> = ["cdn-loop", "true-client-ip", "x-forwarded-for", "x-forwarded-proto", "x-real-ip"]
    static let clientCredentials: Set<String> = ["authorization", "x-api-key", "api-key"]

    /// Whether a client request header may be forwarded upstream.
    public static func forwardsRequestHeader(_ name: String) -> Bool {
        guard mayBeDropped(name) else { return true }
        let lowered = name.asciiLowercased
        return !hopByHop.contains(lowered) && !isFrontProxy(lowered) && !clientCredentials.contains(lowered)
    }

    /// Whether an upstream response header may be copied to the client.
    public static func forwardsResponseHeader(_ name: String) -> Bool {
        guard mayBeDropped(name) else { return true }
        let lowered = name.asciiLowercased
        return !hopByHop.contains(lowered) && !isFrontProxy(lowered)
    }

    /// The lengths of the dropped names, one bit each: most headers (every `x-codex-…` one)
    /// have another length and pass without being lowercased or hashed.
    private static let droppedNameLengths: UInt64 = hopByHop.union(frontProxy).union(clientCredentials)
        .reduce(0) { $0 | 1 << $1.utf8.count }

    private static func mayBeDropped(_ name: String) -> Bool {
        let length = name.utf8.count
        if length < 64, droppedNameLengths & (1 << length) != 0 { return true }
        var bytes = name.utf8.makeIterator()
        return bytes.next().map { $0 | 0x20 } == UInt8(ascii: "c") && bytes.next().map { $0 | 0x20 } == UInt8(ascii: "f")
            && bytes.next() == UInt8(ascii: "-")
    }

    /// The client's headers that may go upstream, also dropping any header the client's
    /// `Connection` header names (RFC 9110 §7.6.1).
    public static func forwardableRequestHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = Set(headers[canonicalForm: "connection"].map { $0.lowercased() })
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count)
        for (name, value) in headers where forwardsRequestHeader(name) && (named.isEmpty || !named.contains(name.asciiLowercased)) {
            fields.append((name, value))
        }
        return HTTPHeaders(fields)
    }

    private static func isFrontProxy(_ lowered: String) -> Bool {
        lowered.bytesHavePrefix("cf-") || frontProxy.contains(lowered)
    }
}
