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
        let signed = base64URL(Array(header.utf8)) + "." + base64URL(claims.serialized)
        return signed + "." + base64URL(signature(of: signed, userToken: userToken))
    }

    /// Whether `bearer` has a JWT's shape (so it is checked as one and not as a plain user token).
    static func looksLikeToken(_ bearer: Substring) -> Bool {
        bearer.hasPrefix("eyJ") && bearer.utf8.count(where: { $0 == UInt8(ascii: ".") }) == 2
    }

    /// The account a token claims to be for, read before its signature is checked: it names the
    /// user whose key checks it.
    static func claimedAccountID(_ bearer: Substring) -> String? {
        claims(of: bearer)?["sub"]?.stringValue
    }

    /// Signed with this user's token, issued by codexpool, and not expired.
    static func isValid(_ bearer: Substring, userToken: Secret, now: Date) -> Bool {
        let parts = bearer.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let presented = bytes(fromBase64URL: parts[2]),
              let claims = claims(of: bearer), claims["iss"]?.stringValue == issuer,
              let expiry = claims["exp"]?.numberValue, expiry > now.timeIntervalSince1970 else { return false }
        let expected = signature(of: String(parts[0] + "." + parts[1]), userToken: userToken)
        // Compared in constant time: a signature must not be guessable byte by byte.
        guard presented.count == expected.count else { return false }
        return zip(presented, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func signature(of signed: String, userToken: Secret) -> [UInt8] {
        HMACSHA256.authenticationCode(key: Array(userToken.value.utf8), message: Array(signed.utf8))
    }

    private static func claims(of bearer: Substring) -> [String: JSONValue]? {
        let parts = bearer.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = bytes(fromBase64URL: parts[1]) else { return nil }
        return JSONValue.parse(payload)?.objectValue
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func bytes(fromBase64URL text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }
}
