import Foundation
import HTTPWire
public import NIOHTTP1
import PoolCore

/// Which headers must not cross the proxy (ocm-reference.md §6.7).
///
/// Hop-by-hop headers describe one connection, front-proxy headers (Cloudflare, X-Forwarded-*)
/// describe one hop and would leak client addresses or confuse the next hop, and client
/// credentials are replaced by the pool's own.
public enum HeaderHygiene {
    static let hopByHop = HTTPHeaderNameSet([
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
    ])
    static let frontProxy = HTTPHeaderNameSet(["cdn-loop", "true-client-ip", "x-forwarded-for", "x-forwarded-proto", "x-real-ip"])
    static let clientCredentials = HTTPHeaderNameSet(["authorization", "x-api-key", "api-key"])

    /// Whether a client request header may be forwarded upstream.
    static func forwardsRequestHeader(_ name: UnsafeRawBufferPointer) -> Bool {
        !hopByHop.contains(name) && !isFrontProxy(name) && !clientCredentials.contains(name)
    }

    /// Whether an upstream response header may be copied to the client.
    public static func forwardsResponseHeader(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { forwardsResponseHeader(UnsafeRawBufferPointer($0)) }
    }

    /// The same for a name where it lies in the bytes read.
    static func forwardsResponseHeader(_ name: UnsafeRawBufferPointer) -> Bool {
        !hopByHop.contains(name) && !isFrontProxy(name)
    }

    /// The client's headers that may go upstream, also dropping any header the client's
    /// `Connection` header names (RFC 9110 §7.6.1).
    public static func forwardableRequestHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
        HTTPHeaders(forwardableRequestFields(headers, reservingMore: 0) { _ in false })
    }

    /// The same as fields, in one pass, also without the names `dropped` takes, with room for
    /// `more` fields the caller adds.
    static func forwardableRequestFields(_ headers: HTTPHeaders, reservingMore more: Int,
                                         dropping dropped: (UnsafeRawBufferPointer) -> Bool) -> [(String, String)] {
        var named: Set<String> = []
        for (name, value) in headers where HTTPToken.name(name, is: "connection") {
            for token in value.split(separator: ",") { named.insert(token.trimmingCharacters(in: .whitespaces).lowercased()) }
        }
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count + more)
        for (name, value) in headers {
            var name = name
            let forwards = name.withUTF8 { bytes in
                let raw = UnsafeRawBufferPointer(bytes)
                return forwardsRequestHeader(raw) && !dropped(raw)
            }
            guard forwards, named.isEmpty || !named.contains(name.asciiLowercased) else { continue }
            fields.append((name, value))
        }
        return fields
    }

    private static func isFrontProxy(_ name: UnsafeRawBufferPointer) -> Bool {
        HTTPToken.name(name, hasPrefix: "cf-") || frontProxy.contains(name)
    }
}
