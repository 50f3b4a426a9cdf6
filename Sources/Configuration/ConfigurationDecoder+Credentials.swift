import Foundation
import PoolCore
import Yams

/// A decoded `credentials:` entry with the positions the cross-entry rules need.
struct DecodedCredential {
    enum Kind: String {
        case local = "default"
        case external
        case balancer
    }

    let kind: Kind
    let tag: String
    let item: ConfigurationValue
    let tagValue: ConfigurationValue
    /// nil when one of its own fields was invalid (already reported).
    let configuration: CredentialConfiguration?
    /// External credentials: the token, for the uniqueness rule.
    var tokenValue: ConfigurationValue? = nil
    /// Balancers: each member tag with its position.
    var members: [(tag: String, value: ConfigurationValue)] = []
}

extension ConfigurationDecoder {
    static let localKeys = ["tag", "type", "credential_path", "usages_path", "reserve_5h", "reserve_weekly", "limit_5h", "limit_weekly",
                            "images", "image_concurrency"]
    static let externalKeys = ["tag", "type", "url", "server", "server_port", "token", "reverse", "usages_path", "tls"]
    static let balancerKeys = ["tag", "type", "credentials", "strategy", "rebalance_threshold"]
    static let peerTLSKeys = ["ca", "server_name", "pin_sha256", "insecure"]

    /// The `credentials:` list, or the single default credential when there is none.
    func decodeCredentials(_ root: [String: ConfigurationValue]) -> [DecodedCredential] {
        let legacyPath = root["credential_path"]
        let legacyUsages = root["usages_path"]
        if let list = root["credentials"], !reader.isNull(list.node) {
            for legacy in [legacyPath, legacyUsages].compactMap({ $0 }) {
                reader.report("cannot be combined with credentials; set it on each credential instead", at: legacy)
            }
            return reader.sequence(list, of: "credentials")?.compactMap(decodeCredential) ?? []
        }
        let path = reader.string(legacyPath).map(paths.resolve) ?? paths.defaultCodexCredentialPath
        let usages = reader.string(legacyUsages).map(paths.resolve)
        let item = ConfigurationValue(node: .mapping(Node.Mapping([])), path: .root, mark: nil)
        return [DecodedCredential(
            kind: .local, tag: "default", item: item, tagValue: item,
            configuration: .local(LocalCredentialConfiguration(tag: "default", credentialPath: path, usagesPath: usages))
        )]
    }

    private func decodeCredential(_ item: ConfigurationValue) -> DecodedCredential? {
        guard case .mapping(let raw) = item.node else {
            _ = reader.mapping(item, allowedKeys: [], context: "a credential")
            return nil
        }
        let typeEntry = raw.first { $0.key.string == "type" }
        let typeValue = typeEntry.map { ConfigurationValue(node: $0.value, path: item.path.appending(key: "type"), mark: $0.key.mark) }
        let typeName = reader.string(typeValue) ?? "default"
        guard let kind = DecodedCredential.Kind(rawValue: typeName.isEmpty ? "default" : typeName) else {
            if let typeValue {
                reader.report("unknown credential type \(reader.quoted(typeName)) (expected default, external or balancer)", at: typeValue)
            }
            return nil
        }
        let allowed = switch kind {
        case .local: Self.localKeys
        case .external: Self.externalKeys
        case .balancer: Self.balancerKeys
        }
        guard let fields = reader.mapping(item, allowedKeys: allowed, context: "a \(kind.rawValue) credential") else { return nil }
        guard let tag = decodeTag(fields["tag"], item: item), let tagValue = fields["tag"] else { return nil }
        switch kind {
        case .local:
            return DecodedCredential(kind: kind, tag: tag, item: item, tagValue: tagValue,
                                     configuration: decodeLocal(tag: tag, fields: fields).map(CredentialConfiguration.local))
        case .external:
            var decoded = DecodedCredential(kind: kind, tag: tag, item: item, tagValue: tagValue,
                                            configuration: decodeExternal(tag: tag, item: item, fields: fields).map(CredentialConfiguration.external))
            decoded.tokenValue = fields["token"]
            return decoded
        case .balancer:
            let members = reader.stringList(fields["credentials"]) ?? []
            var decoded = DecodedCredential(kind: kind, tag: tag, item: item, tagValue: tagValue,
                                            configuration: decodeBalancer(tag: tag, item: item, fields: fields, members: members.map(\.text))
                                                .map(CredentialConfiguration.balancer))
            decoded.members = members.map { (tag: $0.text, value: $0.value) }
            return decoded
        }
    }

    private func decodeTag(_ value: ConfigurationValue?, item: ConfigurationValue) -> String? {
        guard let tag = reader.requiredString(value, missing: "every credential needs a tag", at: item, key: "tag"), let value else { return nil }
        let allowed = tag.count <= 64 && tag.unicodeScalars.allSatisfy {
            $0.isASCIILetter || ("0"..."9").contains($0) || ".-_@".unicodeScalars.contains($0)
        }
        guard allowed else {
            reader.report("a tag is 1 to 64 letters, digits or the characters . - _ @, got \(reader.quoted(tag))", at: value)
            return nil
        }
        return tag
    }

    private func decodeLocal(tag: String, fields: [String: ConfigurationValue]) -> LocalCredentialConfiguration? {
        let path = reader.string(fields["credential_path"]).map(paths.resolve) ?? paths.defaultCodexCredentialPath
        let usages = reader.string(fields["usages_path"]).map(paths.resolve)
        let fiveHour = decodeCap(fields, reserveKey: "reserve_5h", limitKey: "limit_5h")
        let weekly = decodeCap(fields, reserveKey: "reserve_weekly", limitKey: "limit_weekly")
        let images = reader.bool(fields["images"]) ?? true
        let imageConcurrency = fields["image_concurrency"].map { reader.integer($0, in: 1...64) } ?? LocalCredentialConfiguration.defaultImageConcurrency
        guard let fiveHour, let weekly, let imageConcurrency else { return nil }
        return LocalCredentialConfiguration(tag: tag, credentialPath: path, usagesPath: usages, caps: UsageCaps(fiveHour: fiveHour, weekly: weekly),
                                            images: images, imageConcurrency: imageConcurrency)
    }

    /// One window's cap; nil after reporting a problem.
    private func decodeCap(_ fields: [String: ConfigurationValue], reserveKey: String, limitKey: String) -> UsageCapSetting? {
        var valid = true
        var reserve: Int?
        var limit: Int?
        if let value = fields[reserveKey], !reader.isNull(value.node) {
            reserve = reader.integer(value, in: 0...UsageCapSetting.maximumReserve)
            valid = valid && reserve != nil
        }
        if let value = fields[limitKey], !reader.isNull(value.node) {
            limit = reader.integer(value, in: 0...UsageCapSetting.maximumLimit)
            valid = valid && limit != nil
        }
        guard valid else { return nil }
        if let reserve, let limit, reserve > 0, limit > 0, let limitValue = fields[limitKey] {
            reader.report("\(reserveKey) and \(limitKey) are mutually exclusive; keep a reserve or set a limit, not both", at: limitValue)
            return nil
        }
        if let limit, limit > 0 { return .limit(limit) }
        return .reserve(reserve ?? 0)
    }

    private func decodeExternal(tag: String, item: ConfigurationValue, fields: [String: ConfigurationValue]) -> ExternalCredentialConfiguration? {
        let token = reader.requiredString(fields["token"], missing: "an external credential requires a token", at: item, key: "token")
        let url = decodeURL(fields["url"])
        let urlGiven = fields["url"].map { !reader.isNull($0.node) } ?? false
        let reverse = reader.bool(fields["reverse"]) ?? false
        let dialHost = reader.string(fields["server"])
        let dialPort = fields["server_port"].flatMap { reader.integer($0, in: 1...65535) }
        let usages = reader.string(fields["usages_path"]).map(paths.resolve)

        if !urlGiven && !reverse {
            reader.report(
                "an external credential needs url (to forward to that instance) or reverse: true (to accept its connector)",
                at: item.mark, path: item.path)
            return nil
        }
        if !urlGiven {
            for key in ["server", "server_port", "tls"] {
                if let value = fields[key] {
                    reader.report("only applies when url is set (this credential waits for its connector to dial in)", at: value)
                }
            }
        }
        var tls = PeerTLSConfiguration()
        if let tlsValue = fields["tls"] {
            if let url, !url.usesTLS {
                reader.report("only applies to an https:// url", at: tlsValue)
            } else if urlGiven {
                guard let decoded = decodePeerTLS(tlsValue) else { return nil }
                tls = decoded
            }
        }
        guard let token, urlGiven ? url != nil : true else { return nil }
        let mode: ExternalCredentialConfiguration.Mode
        if let url {
            mode = reverse ? .connector(url) : .forward(url)
        } else {
            mode = .receiver
        }
        return ExternalCredentialConfiguration(
            tag: tag, token: Secret(token), mode: mode, dialHost: dialHost, dialPort: dialPort, usagesPath: usages, tls: tls)
    }

    private func decodePeerTLS(_ value: ConfigurationValue) -> PeerTLSConfiguration? {
        guard let fields = reader.mapping(value, allowedKeys: Self.peerTLSKeys, context: "peer tls") else { return nil }
        let ca = reader.string(fields["ca"]).map(paths.resolve)
        let serverName = reader.string(fields["server_name"])
        let insecure = reader.bool(fields["insecure"]) ?? false
        var pins: [[UInt8]] = []
        var valid = true
        for (text, item) in reader.stringList(fields["pin_sha256"]) ?? [] {
            if let pin = PublicKeyPin.parse(text) {
                pins.append(pin)
            } else {
                reader.report("expected the base64 (or hex) SHA-256 of the server's public key, 32 bytes", at: item)
                valid = false
            }
        }
        if insecure, ca != nil || !pins.isEmpty, let insecureValue = fields["insecure"] {
            reader.report("insecure: true turns certificate checks off, so ca and pin_sha256 would be ignored; remove one or the other", at: insecureValue)
            valid = false
        }
        guard valid else { return nil }
        return PeerTLSConfiguration(caPath: ca, serverName: serverName, pinnedPublicKeySHA256: pins, insecureSkipVerification: insecure)
    }

    private func decodeBalancer(tag: String, item: ConfigurationValue, fields: [String: ConfigurationValue], members: [String]) -> BalancerConfiguration? {
        var valid = true
        if members.isEmpty {
            reader.report("a balancer needs at least one member credential", at: fields["credentials"]?.mark ?? item.mark,
                          path: item.path.appending(key: "credentials"))
            valid = false
        }
        var strategy = BalancerStrategy.default
        if let text = reader.string(fields["strategy"]), let strategyValue = fields["strategy"], !text.isEmpty {
            if let parsed = BalancerStrategy(configurationName: text) {
                strategy = parsed
            } else {
                reader.report("unknown balancer strategy \(reader.quoted(text)) (expected \(BalancerStrategy.expectedNames))", at: strategyValue)
                valid = false
            }
        }
        var threshold = 0.0
        if let value = fields["rebalance_threshold"], let number = reader.number(value) {
            if number < 0 {
                reader.report("must not be negative, got \(value.node.string ?? "")", at: value)
                valid = false
            } else if number > 0, strategy != .leastUsed {
                reader.report("rebalancing only applies to the least-used strategy, not \(strategy.rawValue)", at: value)
                valid = false
            }
            threshold = number
        }
        guard valid else { return nil }
        return BalancerConfiguration(tag: tag, members: members, strategy: strategy, rebalanceThreshold: threshold)
    }
}

/// The certificate pin format of `pin_sha256`.
enum PublicKeyPin {
    /// Accepts base64 (what the `openssl … | base64` recipe prints) or hex, with or without colons.
    static func parse(_ text: String) -> [UInt8]? {
        if let data = Data(base64Encoded: text), data.count == 32 { return Array(data) }
        let hex = text.filter { $0 != ":" }
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
