public import Foundation

/// The OAuth refresh exchange with the token endpoint (§2.5), minus the HTTP itself.
public enum TokenRefresh {
    /// The Codex CLI's public OAuth client id.
    public static let clientID = "app_EMoamEEZ73f0CkXaXp7hrann"

    /// `{"grant_type":"refresh_token","refresh_token":…,"client_id":…,"scope":"openid profile email"}`.
    public static func requestBody(refreshToken: String) -> Data {
        let body: [String: JSONValue] = [
            "grant_type": .string("refresh_token"), "refresh_token": .string(refreshToken),
            "client_id": .string(clientID), "scope": .string("openid profile email"),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(JSONValue.object(body))) ?? Data()
    }

    /// Error codes after which the refresh token can never work again.
    static let terminalCodes: Set<String> = [
        "refresh_token_reused", "refresh_token_expired", "refresh_token_invalidated", "invalid_grant",
    ]

    /// Classifies the token endpoint's answer.
    public static func interpret(_ response: TokenEndpointResponse) -> Result<TokenRefreshResponse, TokenRefreshError> {
        if response.status == 200 {
            guard let parsed = try? JSONDecoder().decode(TokenRefreshResponse.self, from: response.body),
                  parsed.accessToken?.isEmpty == false else {
                return .failure(.rejected(status: 200, detail: "answer without an access token"))
            }
            return .success(parsed)
        }
        if response.status == 429 {
            let retryAfter = response.headers.first { $0.name.lowercased() == "retry-after" }
                .flatMap { RateLimitRejection.parseRetryAfter($0.value) }
            return .failure(.rateLimited(retryAfter: retryAfter))
        }
        let error = (try? JSONDecoder().decode(JSONValue.self, from: response.body))
        let code = error?["error"]?["code"]?.stringValue ?? error?["error"]?.stringValue ?? error?["code"]?.stringValue
        if let code, terminalCodes.contains(code) { return .failure(.terminal(code: code)) }
        return .failure(.rejected(status: response.status, detail: code ?? "no error code"))
    }
}

/// What the token endpoint answered; produced by the I/O shell.
public struct TokenEndpointResponse: Sendable {
    public var status: Int
    public var headers: HeaderFields
    public var body: Data

    public init(status: Int, headers: HeaderFields = [], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Sends refresh requests to the OAuth token endpoint. The gateway implements it over its HTTP
/// client; tests implement it in memory.
public protocol TokenRefresher: Sendable {
    /// POSTs `body` (JSON) to the token URL. Throws only when no HTTP answer was received.
    func postTokenRequest(body: Data) async throws -> TokenEndpointResponse
}

public struct TokenRefreshResponse: Decodable, Hashable, Sendable {
    public var idToken: String?
    public var accessToken: String?
    public var refreshToken: String?

    public init(idToken: String? = nil, accessToken: String?, refreshToken: String? = nil) {
        self.idToken = idToken
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }

    enum CodingKeys: String, CodingKey {
        case idToken = "id_token"
        case accessToken = "access_token"
        case refreshToken = "refresh_token"
    }
}

/// Why a refresh did not produce a token. Messages never include tokens.
public enum TokenRefreshError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The token endpoint asked to slow down; nil means it did not say for how long.
    case rateLimited(retryAfter: TimeInterval?)
    /// The refresh token is dead (`refresh_token_reused`, `invalid_grant`, …).
    case terminal(code: String)
    case rejected(status: Int, detail: String)
    case transport(String)
    case notWritable(String)
    case changedWhileRefreshing

    public var description: String {
        switch self {
        case .rateLimited(let retryAfter):
            let when = retryAfter.map { "retrying in \(DurationText.interval($0))" } ?? "waiting for the credential file to change"
            return "token refresh rate-limited by the token endpoint; \(when)"
        case .terminal(let code):
            return "token refresh failed for good (\(code)): the refresh token was used or revoked elsewhere — probably by "
                + "the official Codex CLI, which rotates it on each refresh. Run `codex login` for this account (or copy its "
                + "current auth.json here); codexpool picks the new file up by itself"
        case .rejected(let status, let detail):
            return "token refresh failed: HTTP \(status) (\(detail))"
        case .transport(let message):
            return "token refresh failed: \(message)"
        case .notWritable(let detail):
            return "credential file not writable, refusing refresh to avoid invalidation (refresh tokens rotate, so a "
                + "refreshed token that cannot be saved would be lost at the next restart): \(detail)"
        case .changedWhileRefreshing:
            return "the credential file changed while refreshing and still needs a refresh; will retry"
        }
    }
}
