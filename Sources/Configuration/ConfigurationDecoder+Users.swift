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
    let limits: UserLimits

    /// The final value; `singleCredentialTag` serves users that name no credential.
    func resolved(singleCredentialTag: String?) -> UserConfiguration {
        UserConfiguration(
            name: name, token: Secret(token), credential: credential?.tag ?? singleCredentialTag ?? "",
            externalCredential: externalCredential?.tag, allowExternalUsage: allowExternalUsage, isAdmin: isAdmin,
            limits: limits)
    }
}

extension ConfigurationDecoder {
    static let userKeys = ["name", "token", "credential", "external_credential", "allow_external_usage", "admin", "limits"]
    static let limitKeys = UserLimitKind.allCases.map(\.rawValue) + ["max_concurrent_sessions"]

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
            isAdmin: reader.bool(fields["admin"]) ?? false, limits: fields["limits"].map(decodeLimits) ?? UserLimits())
    }

    /// `limits: {requests_per_day: 500, cost_per_month: 200, …}`: whole numbers for requests,
    /// tokens and sessions, dollars for costs.
    private func decodeLimits(_ value: ConfigurationValue) -> UserLimits {
        guard let fields = reader.mapping(value, allowedKeys: Self.limitKeys, context: "a user's limits") else { return UserLimits() }
        func count(_ key: String) -> Int? { reader.integer(fields[key], in: 0...Int(Int32.max) * 1_000) }
        func dollars(_ key: String) -> Double? {
            guard let field = fields[key], let amount = reader.number(field) else { return nil }
            guard amount >= 0 else {
                reader.report("must be zero or more (US dollars), got \(amount)", at: field)
                return nil
            }
            return amount
        }
        return UserLimits(
            requestsPerDay: count("requests_per_day"), tokensPerDay: count("tokens_per_day"), tokensPerWeek: count("tokens_per_week"),
            costPerDay: dollars("cost_per_day"), costPerWeek: dollars("cost_per_week"), costPerMonth: dollars("cost_per_month"),
            maxConcurrentSessions: reader.integer(fields["max_concurrent_sessions"], in: 1...100_000))
    }
}
