public import Foundation
public import PoolCore
import OpenSSLTLS

/// The "ChatGPT access token" a Codex CLI signed in to codexpool presents (codex-wire-2026.md §6).
///
/// It is a JWT because Codex reads one: the account id and plan from its claims, and its `exp`
/// to decide when to refresh it. With a far `exp` Codex never refreshes it against
/// auth.openai.com — a refresh there with a token it never issued would fail with 401 and sign
/// the user out (codex-login.md §3). It is signed with HMAC-SHA-256 keyed by the user's
/// codexpool token, so the token itself never lands in the CLI's auth.json, and changing a
/// user's token revokes every sign-in made with it.
public enum ChatGPTModeToken {
    public static let issuer = "codexpool"
    /// Far enough that Codex's "refresh when `exp` is near" never fires.
    public static let lifetime: TimeInterval = 10 * 365 * 86_400
    private static let header = #"{"alg":"HS256","typ":"JWT"}"#

    public static func issue(userToken: Secret, accountID: String, planType: String, now: Date) -> String {
        let issuedAt = Int64(now.timeIntervalSince1970)
        let claims: JSONValue = .object([
            "iss": .string(issuer),
            "sub": .string(accountID),
            "iat": .integer(issuedAt),
            "exp": .integer(issuedAt + Int64(lifetime)),
            "email": .string("\(accountID)@codexpool"),
            "https://api.openai.com/auth": .object([
                "chatgpt_account_id": .string(accountID), "chatgpt_plan_type": .string(planType),
                "chatgpt_user_id": .string(accountID), "user_id": .string(accountID),
            ]),
        ])
        let signed = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(claims.serialized)
        return signed + "." + Base64URL.encode(signature(of: signed, userToken: userToken))
    }

    /// Whether `bearer` has a JWT's shape (so it is checked as one and not as a plain user token).
    static func looksLikeToken(_ bearer: Substring) -> Bool {
        bearer.hasPrefix("eyJ") && bearer.utf8.count(where: { $0 == UInt8(ascii: ".") }) == 2
    }

    /// The account a sign-in stands for, or nil: issued by codexpool, not expired, and signed
    /// with the token `userToken(accountID)` gives for the account it claims (its claims are read
    /// once, before the signature is checked, to know whose key checks it).
    static func verifiedAccountID(_ bearer: Substring, now: Date, userToken: (String) -> Secret?) -> String? {
        let parts = bearer.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let presented = Base64URL.decode(parts[2]),
              let claims = Base64URL.decode(parts[1]).flatMap({ JSONValue.parse($0)?.objectValue }),
              claims["iss"]?.stringValue == issuer, let accountID = claims["sub"]?.stringValue, let key = userToken(accountID),
              let expiry = claims["exp"]?.numberValue, expiry > now.timeIntervalSince1970 else { return nil }
        let expected = signature(of: String(parts[0] + "." + parts[1]), userToken: key)
        // Compared in constant time: a signature must not be guessable byte by byte.
        guard presented.count == expected.count, zip(presented, expected).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else { return nil }
        return accountID
    }

    private static func signature(of signed: String, userToken: Secret) -> [UInt8] {
        HMACSHA256.authenticationCode(key: Array(userToken.value.utf8), message: Array(signed.utf8))
    }
}
