import Foundation

/// An `http://` or `https://` URL of an upstream or a peer instance, split into the parts
/// the dialer needs.
public struct EndpointURL: Hashable, Sendable, CustomStringConvertible {
    public enum Scheme: String, Hashable, Sendable {
        case http
        case https

        public var defaultPort: Int { self == .https ? 443 : 80 }
    }

    public var scheme: Scheme
    /// Host name or address, without brackets for IPv6.
    public var host: String
    /// The explicit port, or nil to use the scheme's default.
    public var explicitPort: Int?
    /// The path without a trailing slash; empty for `/`.
    public var path: String

    public var port: Int { explicitPort ?? scheme.defaultPort }
    public var usesTLS: Bool { scheme == .https }

    /// `host[:port]` exactly as it belongs in a `Host` header.
    public var hostHeader: String {
        let shownHost = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        return explicitPort.map { "\(shownHost):\($0)" } ?? shownHost
    }

    public var description: String { "\(scheme.rawValue)://\(hostHeader)\(path)" }

    /// Parses an absolute http(s) URL; nil for anything else (other schemes, user info,
    /// query strings and fragments have no meaning for an endpoint and are refused).
    public init?(parsing text: String) {
        guard let schemeEnd = text.range(of: "://") else { return nil }
        guard let scheme = Scheme(rawValue: text[..<schemeEnd.lowerBound].lowercased()) else { return nil }
        let afterScheme = text[schemeEnd.upperBound...]
        guard !afterScheme.contains(where: { $0 == "?" || $0 == "#" || $0 == "@" || $0.isWhitespace }) else { return nil }
        let authority = afterScheme.prefix { $0 != "/" }
        guard let (host, port) = HostAndPort.split(authority), port != 0 else { return nil }
        self.scheme = scheme
        self.host = host
        self.explicitPort = port
        var trimmedPath = String(afterScheme[authority.endIndex...])
        while trimmedPath.hasSuffix("/") { trimmedPath.removeLast() }
        self.path = trimmedPath
    }
}
