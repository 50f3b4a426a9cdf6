public import Configuration
public import Foundation
public import NIOHTTP1
public import PoolCore

/// Who is asking, after authentication (§7.2).
public struct AuthenticatedUser: Sendable {
    /// Empty when no users are configured.
    public var name: String
    /// The credential or balancer tag that serves this user.
    public var provider: String
    public var scope: SelectionScope
    public var viewer: StatusViewer
    /// Sees everyone's history and may enable and disable credentials (admin API). Everyone is,
    /// on an instance without users.
    public var isAdmin = false
}

/// Checks `Authorization: Bearer` against the configured users in constant time.
public struct UserAuthenticator: Sendable {
    private let users: [UserConfiguration]
    private let defaultProvider: String

    public init(users: [UserConfiguration], defaultProvider: String) {
        self.users = users
        self.defaultProvider = defaultProvider
    }

    public enum Failure: Error, Hashable, Sendable {
        case apiKeyHeader
        case missing
        case malformed
        case unknownToken(fingerprint: String)
        /// Too many failures from this address lately; try again after this many seconds.
        case throttled(retryAfter: Int)

        var response: GatewayResponse {
            switch self {
            case .apiKeyHeader:
                GatewayResponse.error(.badRequest, type: "invalid_request_error",
                                      message: "API key authentication is not supported; use Authorization: Bearer with an OCM user token")
            case .missing: GatewayResponse.error(.unauthorized, type: "authentication_error", message: "missing api key")
            case .malformed: GatewayResponse.error(.unauthorized, type: "authentication_error", message: "invalid api key format")
            case .unknownToken: GatewayResponse.error(.unauthorized, type: "authentication_error", message: "invalid api key")
            case .throttled(let retryAfter):
                GatewayResponse.error(.tooManyRequests, type: "authentication_error", code: "too_many_failed_authentications",
                                      message: "too many failed authentications from this address; try again in \(retryAfter) s")
                    .retrying(after: retryAfter)
            }
        }

        /// For the warning log; never contains the token itself.
        var logMessage: String {
            switch self {
            case .apiKeyHeader: "request with an API-key header refused"
            case .missing: "missing Authorization header"
            case .malformed: "Authorization header is not \"Bearer <token>\""
            case .unknownToken(let fingerprint): "unknown user token (fingerprint \(fingerprint))"
            case .throttled(let retryAfter): "refused: too many failed authentications from this address (for \(retryAfter) s more)"
            }
        }
    }

    public func authenticate(_ headers: HTTPHeaders, now: Date = Date()) -> Result<AuthenticatedUser, Failure> {
        let presented = Self.bearerToken(in: headers)
        if case .failure(.apiKeyHeader) = presented { return .failure(.apiKeyHeader) }
        guard !users.isEmpty else {
            return .success(AuthenticatedUser(name: "", provider: defaultProvider, scope: .all, viewer: .everyone, isAdmin: true))
        }
        let token: Substring
        switch presented {
        case .failure(let failure): return .failure(failure)
        case .success(let bearer): token = bearer
        }
        guard let user = user(presenting: token, now: now) else {
            return .failure(.unknownToken(fingerprint: Secret(String(token)).fingerprint))
        }
        return .success(AuthenticatedUser(
            name: user.name, provider: user.credential, scope: SelectionScope(allowExternalUsage: user.allowExternalUsage),
            viewer: StatusViewer(ownInstanceTag: user.externalCredential, allowExternalUsage: user.allowExternalUsage), isAdmin: user.isAdmin))
    }
}

extension UserAuthenticator {
    /// The user a bearer token stands for: their own token, or a ChatGPT-mode sign-in signed with it.
    private func user(presenting token: Substring, now: Date) -> UserConfiguration? {
        var claimant: UserConfiguration?
        if ChatGPTModeToken.looksLikeToken(token), ChatGPTModeToken.verifiedAccountID(token, now: now, userToken: { claimed in
            claimant = users.first { PoolUsageAnswer.accountID(for: $0.name) == claimed }
            return claimant?.token
        }) != nil {
            return claimant
        }
        return constantTimeMatch(token, among: users, secret: \.token)
    }

    /// The token of `Authorization: Bearer …`, after refusing API-key headers (§7.2); the
    /// reverse handshake checks the same things in the same order.
    static func bearerToken(in headers: HTTPHeaders) -> Result<Substring, Failure> {
        if headers.contains(name: "x-api-key") || headers.contains(name: "api-key") { return .failure(.apiKeyHeader) }
        guard let authorization = headers.first(name: "authorization") else { return .failure(.missing) }
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer x` and `BEARER x` are the same.
        guard authorization.utf8.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return .failure(.malformed) }
        return .success(authorization.dropFirst(7))
    }
}

/// The first candidate whose secret equals `token`. Every candidate is compared, each in
/// constant time, so the time taken does not reveal which one matched.
func constantTimeMatch<Candidate>(_ token: Substring, among candidates: [Candidate], secret: (Candidate) -> Secret) -> Candidate? {
    var matched: Candidate?
    for candidate in candidates where secret(candidate).constantTimeEquals(token) && matched == nil { matched = candidate }
    return matched
}
