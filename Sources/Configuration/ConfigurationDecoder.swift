import Foundation
import PoolCore
import Yams

/// Turns a composed YAML document into a `CodexpoolConfiguration`, checking every rule.
///
/// Per-field rules (types, ranges, exclusive pairs) are checked while decoding; rules that
/// relate entries to each other (tags, references, tokens) run afterwards over the decoded
/// entries, which keep their YAML positions for messages.
struct ConfigurationDecoder {
    let reader: ConfigurationReader
    let paths: ConfigurationPathResolver

    static let rootKeys = ["listen", "tls", "upstream", "headers", "credential_path", "usages_path", "credentials", "users", "log", "metrics",
                           "limits", "allow_open_access", "storage", "models"]

    func decode(_ document: Node?) -> CodexpoolConfiguration? {
        let rootNode = document ?? Node.mapping(Node.Mapping([]))
        let rootValue = ConfigurationValue(node: rootNode, path: .root, mark: rootNode.mark)
        guard let root = reader.mapping(rootValue, allowedKeys: Self.rootKeys, context: "the configuration") else { return nil }

        let listen = decodeListen(root["listen"])
        let tls = root["tls"].flatMap(decodeInboundTLS)
        let upstream = decodeUpstream(root["upstream"])
        let headers = root["headers"].map(decodeHeaders) ?? []
        let credentials = decodeCredentials(root)
        let users = root["users"].flatMap { reader.sequence($0, of: "users") }?.compactMap(decodeUser) ?? []
        let logLevel = decodeLogLevel(root["log"])
        let metrics = root["metrics"].flatMap(decodeMetrics)
        let limits = root["limits"].flatMap(decodeLimits)
        let allowOpenAccess = reader.bool(root["allow_open_access"]) ?? false
        let storage = root["storage"].map(decodeStorage) ?? StorageConfiguration(enabled: true, path: paths.defaultStoragePath)
        let models = root["models"].flatMap { reader.stringList($0) }?.map(\.text)

        let validator = ReferenceValidator(reader: reader)
        validator.check(credentials: credentials, users: users)
        checkExposure(listen: listen ?? .default, root: rootValue, hasUsers: !users.isEmpty, allowOpenAccess: allowOpenAccess,
                      metrics: metrics ?? MetricsConfiguration())

        let resolvedCredentials = credentials.compactMap(\.configuration)
        guard reader.issues.isEmpty, resolvedCredentials.count == credentials.count else { return nil }
        let singleCredentialTag = resolvedCredentials.count == 1 ? resolvedCredentials[0].tag : nil
        return CodexpoolConfiguration(
            listen: listen ?? .default,
            tls: tls,
            upstream: upstream ?? .openAI,
            upstreamHeaders: headers,
            credentials: resolvedCredentials,
            users: users.map { $0.resolved(singleCredentialTag: singleCredentialTag) },
            logLevel: logLevel ?? .info,
            metrics: metrics ?? MetricsConfiguration(),
            limits: limits ?? ListenerLimits(),
            allowOpenAccess: allowOpenAccess,
            storage: storage,
            fallbackModels: models ?? CodexpoolConfiguration.defaultModels
        )
    }

    // MARK: Server

    /// Beyond loopback, serving everyone or an open `/metrics` must be asked for explicitly.
    private func checkExposure(listen: ListenAddress, root: ConfigurationValue, hasUsers: Bool, allowOpenAccess: Bool, metrics: MetricsConfiguration) {
        guard !listen.isLoopback else { return }
        if !hasUsers, !allowOpenAccess {
            reader.report("listening on \(listen) with no users would serve anyone who can reach it; add users (each with a token) "
                + "or set allow_open_access: true", at: root.mark, path: root.path.appending(key: "users"))
        }
        if metrics.enabled, metrics.token == nil, !metrics.isPublic {
            reader.report("listening on \(listen), /metrics would be open to everyone; set metrics.token, metrics.enabled: false, "
                + "or metrics.public: true", at: root.mark, path: root.path.appending(key: "metrics"))
        }
    }

    private func decodeListen(_ value: ConfigurationValue?) -> ListenAddress? {
        guard let text = reader.string(value), let value else { return nil }
        guard let address = ListenAddress(parsing: text) else {
            reader.report("expected host:port such as 127.0.0.1:8080 or [::1]:8080, got \(reader.quoted(text))", at: value)
            return nil
        }
        return address
    }

    private func decodeInboundTLS(_ value: ConfigurationValue) -> InboundTLSConfiguration? {
        guard let fields = reader.mapping(value, allowedKeys: ["certificate", "key"], context: "inbound tls") else { return nil }
        let certificate = reader.requiredString(
            fields["certificate"], missing: "inbound tls needs a certificate (PEM chain file)", at: value, key: "certificate")
        let key = reader.requiredString(fields["key"], missing: "inbound tls needs a key (PEM private key file)", at: value, key: "key")
        guard let certificate, let key else { return nil }
        return InboundTLSConfiguration(certificatePath: paths.resolve(certificate), keyPath: paths.resolve(key))
    }

    private func decodeUpstream(_ value: ConfigurationValue?) -> UpstreamEndpoints? {
        guard let value else { return nil }
        let keys = ["base_url", "api_base_url", "usage_url", "token_url", "auth_url"]
        guard let fields = reader.mapping(value, allowedKeys: keys, context: "upstream") else { return nil }
        let defaults = UpstreamEndpoints.openAI
        return UpstreamEndpoints(
            baseURL: decodeURL(fields["base_url"]) ?? defaults.baseURL,
            apiBaseURL: decodeURL(fields["api_base_url"]) ?? defaults.apiBaseURL,
            usageURL: decodeURL(fields["usage_url"]) ?? defaults.usageURL,
            tokenURL: decodeURL(fields["token_url"]) ?? defaults.tokenURL,
            authURL: decodeURL(fields["auth_url"]) ?? defaults.authURL
        )
    }

    func decodeURL(_ value: ConfigurationValue?) -> EndpointURL? {
        guard let text = reader.string(value), let value else { return nil }
        guard let url = EndpointURL(parsing: text) else {
            reader.report("expected an http:// or https:// URL without query or user info, got \(reader.quoted(text))", at: value)
            return nil
        }
        return url
    }

    private func decodeHeaders(_ value: ConfigurationValue) -> [UpstreamHeader] {
        guard case .mapping(let mapping) = value.node else {
            _ = reader.mapping(value, allowedKeys: [], context: "headers")
            return []
        }
        var headers: [UpstreamHeader] = []
        for (keyNode, valueNode) in mapping {
            let name = keyNode.string ?? ""
            let entry = ConfigurationValue(node: valueNode, path: value.path.appending(key: name), mark: keyNode.mark)
            guard HTTPHeaderSyntax.isValidName(name) else {
                reader.report("not a valid HTTP header name", at: entry)
                continue
            }
            guard let values = reader.stringList(entry) else {
                reader.report("expected a header value or a list of values", at: entry)
                continue
            }
            var accepted: [String] = []
            for (text, item) in values {
                if HTTPHeaderSyntax.isValidValue(text) {
                    accepted.append(text)
                } else {
                    reader.report("header values must not contain line breaks or control characters", at: item)
                }
            }
            headers.append(UpstreamHeader(name: name, values: accepted))
        }
        return headers
    }

    private func decodeMetrics(_ value: ConfigurationValue) -> MetricsConfiguration? {
        guard let fields = reader.mapping(value, allowedKeys: ["enabled", "token", "public"], context: "metrics") else { return nil }
        let token = fields["token"].flatMap { reader.requiredString($0, missing: "", at: value, key: "token") }
        return MetricsConfiguration(enabled: reader.bool(fields["enabled"]) ?? true, token: token.map(Secret.init),
                                    isPublic: reader.bool(fields["public"]) ?? false)
    }

    private func decodeStorage(_ value: ConfigurationValue) -> StorageConfiguration {
        let defaults = StorageConfiguration(enabled: true, path: paths.defaultStoragePath)
        guard let fields = reader.mapping(value, allowedKeys: StorageConfiguration.keys, context: "storage") else { return defaults }
        var retention = defaults.retention
        if let value = fields["retention"], let times = reader.mapping(value, allowedKeys: StorageConfiguration.Retention.keys, context: "storage.retention") {
            retention.requests = reader.duration(times["requests"], in: 3600...(10 * 365 * 86_400)) ?? retention.requests
            retention.detail = reader.duration(times["detail"], in: 60...(30 * 86_400)) ?? retention.detail
            retention.summary = reader.duration(times["summary"], in: 3600...(10 * 365 * 86_400)) ?? retention.summary
        }
        return StorageConfiguration(enabled: reader.bool(fields["enabled"]) ?? true,
                                    path: reader.string(fields["path"]).map(paths.resolve) ?? defaults.path, retention: retention)
    }

    private func decodeLimits(_ value: ConfigurationValue) -> ListenerLimits? {
        guard let fields = reader.mapping(value, allowedKeys: ListenerLimits.keys, context: "limits") else { return nil }
        let defaults = ListenerLimits()
        return ListenerLimits(
            maxHeaderBytes: reader.byteSize(fields["max_header_bytes"], in: 1024...(80 << 10)) ?? defaults.maxHeaderBytes,
            maxBody: reader.byteSize(fields["max_body"], in: 1024...(1 << 30)) ?? defaults.maxBody,
            maxWebSocketMessage: reader.byteSize(fields["max_websocket_message"], in: 1024...(1 << 30)) ?? defaults.maxWebSocketMessage,
            headerTimeout: reader.duration(fields["header_timeout"], in: 0.1...3600) ?? defaults.headerTimeout,
            idleTimeout: reader.duration(fields["idle_timeout"], in: 0.1...86_400) ?? defaults.idleTimeout,
            maxConnections: reader.integer(fields["max_connections"], in: 1...1_000_000) ?? defaults.maxConnections,
            failedAuthenticationsPerMinute: reader.integer(fields["failed_auth_per_minute"], in: 1...100_000) ?? defaults.failedAuthenticationsPerMinute,
            maxTunnelStreams: reader.integer(fields["max_tunnel_streams"], in: 1...1_000_000) ?? defaults.maxTunnelStreams)
    }

    private func decodeLogLevel(_ value: ConfigurationValue?) -> LogLevel? {
        guard let value, let fields = reader.mapping(value, allowedKeys: ["level"], context: "log") else { return nil }
        guard let text = reader.string(fields["level"]), let levelValue = fields["level"] else { return nil }
        guard let level = LogLevel(rawValue: text.lowercased()) else {
            let expected = LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
            reader.report("unknown log level \(reader.quoted(text)) (expected \(expected))", at: levelValue)
            return nil
        }
        return level
    }
}

/// Syntax of HTTP header names and values (RFC 9110 tokens; no control characters in values).
enum HTTPHeaderSyntax {
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }

    static func isValidValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7f) }
    }
}
