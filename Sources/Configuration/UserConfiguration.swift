public import PoolCore

/// A client of this instance, authenticated by bearer token.
public struct UserConfiguration: Hashable, Sendable {
    /// Shown in logs and usage statistics.
    public var name: String
    public var token: Secret
    /// Tag of the credential or balancer that serves this user.
    public var credential: String
    /// Tag of the external credential that stands for this user's own instance; it is left out
    /// of the status this user sees, so a peer never counts its own capacity back to itself.
    public var externalCredential: String?
    /// Whether balancers may pick external credentials for this user.
    public var allowExternalUsage: Bool
    /// Sees every user's history in the admin API and may enable and disable credentials.
    public var isAdmin: Bool
    /// What the user may use (`limits:`); empty means no limits.
    public var limits: UserLimits

    public init(name: String, token: Secret, credential: String, externalCredential: String? = nil, allowExternalUsage: Bool = false,
                isAdmin: Bool = false, limits: UserLimits = UserLimits()) {
        self.name = name
        self.token = token
        self.credential = credential
        self.externalCredential = externalCredential
        self.allowExternalUsage = allowExternalUsage
        self.isAdmin = isAdmin
        self.limits = limits
    }
}
