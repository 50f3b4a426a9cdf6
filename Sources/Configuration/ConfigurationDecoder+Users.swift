import PoolCore

/// A decoded `users:` entry with the positions the cross-entry rules need.
struct DecodedUser {
    let item: ConfigurationValue
    let name: String
    let nameValue: ConfigurationValue
    let token: String
    let tokenValue: ConfigurationValue
    let credential: (tag: String, value: ConfigurationValue)?
    let externalCredential: (tag: String, value: ConfigurationValue)?
    let allowExternalUsage: Bool
    let isAdmin: Bool

    /// The final value; `singleCredentialTag` serves users that name no credential.
    func resolved(singleCredentialTag: String?) -> UserConfiguration {
        UserConfiguration(
            name: name, token: Secret(token), credential: credential?.tag ?? singleCredentialTag ?? "",
            externalCredential: externalCredential?.tag, allowExternalUsage: allowExternalUsage, isAdmin: isAdmin)
    }
}

extension ConfigurationDecoder {
    static let userKeys = ["name", "token", "credential", "external_credential", "allow_external_usage", "admin"]

    func decodeUser(_ item: ConfigurationValue) -> DecodedUser? {
        guard let fields = reader.mapping(item, allowedKeys: Self.userKeys, context: "a user") else { return nil }
        let name = reader.requiredString(fields["name"], missing: "every user needs a name", at: item, key: "name")
        let token = reader.requiredString(fields["token"], missing: "every user needs a token", at: item, key: "token")
        let credential = fields["credential"].flatMap { value in reader.string(value).map { (tag: $0, value: value) } }
        let external = fields["external_credential"].flatMap { value in reader.string(value).map { (tag: $0, value: value) } }
        let allowExternal = reader.bool(fields["allow_external_usage"]) ?? false
        guard let name, let token, let nameValue = fields["name"], let tokenValue = fields["token"] else { return nil }
        return DecodedUser(
            item: item, name: name, nameValue: nameValue, token: token, tokenValue: tokenValue,
            credential: credential, externalCredential: external, allowExternalUsage: allowExternal,
            isAdmin: reader.bool(fields["admin"]) ?? false)
    }
}
