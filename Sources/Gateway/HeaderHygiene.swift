public import NIOHTTP1

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
        let lowered = name.lowercased()
        return !hopByHop.contains(lowered) && !isFrontProxy(lowered) && !clientCredentials.contains(lowered)
    }

    /// Whether an upstream response header may be copied to the client.
    public static func forwardsResponseHeader(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return !hopByHop.contains(lowered) && !isFrontProxy(lowered)
    }

    /// The client's headers that may go upstream, also dropping any header the client's
    /// `Connection` header names (RFC 9110 §7.6.1).
    public static func forwardableRequestHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = Set(headers[canonicalForm: "connection"].map { $0.lowercased() })
        var result = HTTPHeaders()
        for (name, value) in headers {
            let lowered = name.lowercased()
            if forwardsRequestHeader(lowered), !named.contains(lowered) {
                result.add(name: name, value: value)
            }
        }
        return result
    }

    /// The upstream response headers that may go to the client.
    public static func forwardableResponseHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
        var result = HTTPHeaders()
        for (name, value) in headers where forwardsResponseHeader(name) {
            result.add(name: name, value: value)
        }
        return result
    }

    private static func isFrontProxy(_ lowered: String) -> Bool {
        lowered.hasPrefix("cf-") || frontProxy.contains(lowered)
    }
}
