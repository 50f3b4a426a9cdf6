/// Where the server accepts connections: `host:port`, or `[v6-address]:port`.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    /// 0 asks the system for a free port (tests use it).
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public static let `default` = ListenAddress(host: "127.0.0.1", port: 8080)

    /// Parses `0.0.0.0:8443`, `localhost:8080` or `[::1]:8080`; nil when malformed or without a port.
    public init?(parsing text: String) {
        guard let (host, port) = HostAndPort.split(Substring(text)), let port else { return nil }
        self.init(host: host, port: port)
    }

    /// Reachable from this machine only: 127.0.0.0/8, ::1 or localhost.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
