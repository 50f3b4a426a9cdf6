public import OpenSSLTLS

/// One upstream origin: where to dial and how to secure it. Connections are pooled per target.
public struct UpstreamTarget: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// nil: plain HTTP (tests, the simulator, a peer on loopback).
    public var tls: OpenSSLContext?
    /// SNI and the name the certificate must carry.
    public var serverName: String
    /// The `Host` header value.
    public var hostHeader: String

    public init(host: String, port: Int, tls: OpenSSLContext?, serverName: String? = nil, hostHeader: String? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
        self.serverName = serverName ?? host
        self.hostHeader = hostHeader ?? host
    }

    public var description: String { "\(tls == nil ? "http" : "https")://\(hostHeader)" }

    public static func == (lhs: UpstreamTarget, rhs: UpstreamTarget) -> Bool {
        lhs.host == rhs.host && lhs.port == rhs.port && lhs.serverName == rhs.serverName && lhs.hostHeader == rhs.hostHeader
            && lhs.tls.map(ObjectIdentifier.init) == rhs.tls.map(ObjectIdentifier.init)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(serverName)
        hasher.combine(tls.map(ObjectIdentifier.init))
    }
}


extension UpstreamTarget {
    /// The placeholder origin of requests through a tunnel (§5.2); never dialled.
    package static let reverseProxy = UpstreamTarget(host: "reverse-proxy", port: 80, tls: nil, serverName: "reverse-proxy", hostHeader: "reverse-proxy")
}
