public import Foundation

/// A Codex CLI `auth.json`: ChatGPT OAuth tokens or an API key (§2.1).
///
/// The whole document is kept, so fields written by newer Codex versions (such as `auth_mode`)
/// survive a token refresh; only the fields this program owns are replaced.
public struct CodexAuthFile: Hashable, Sendable {
    public private(set) var document: [String: JSONValue]
    /// `last_refresh`, RFC 3339 with or without fractional seconds. Parsed once per document,
    /// because `needsRefresh` runs for every upstream request.
    public private(set) var lastRefresh: Date?
    /// The access token's `exp` claim when it is a JWT (decoded once per document).
    public private(set) var accessTokenExpiry: Date?

    public struct Tokens: Hashable, Sendable {
        public var idToken: String?
        public var accessToken: String
        public var refreshToken: String?
        public var accountID: String?
    }

    public enum ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        case notJSON
        case noCredentials

        public var description: String {
            switch self {
            case .notJSON: "is not a JSON object"
            case .noCredentials: "holds neither tokens.access_token nor OPENAI_API_KEY"
            }
        }
    }

    public init(data: Data) throws(ParseError) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data), let object = value.objectValue else { throw .notJSON }
        document = object
        guard apiKey != nil || tokens != nil else { throw .noCredentials }
        deriveTimes()
    }

    /// Non-empty `OPENAI_API_KEY`: API-key mode (no subscription limits, no refresh).
    public var apiKey: String? {
        document["OPENAI_API_KEY"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var isAPIKeyMode: Bool { apiKey != nil }

    public var tokens: Tokens? {
        guard let object = document["tokens"]?.objectValue,
              let access = object["access_token"]?.stringValue, !access.isEmpty else { return nil }
        func field(_ name: String) -> String? { object[name]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        return Tokens(idToken: field("id_token"), accessToken: access, refreshToken: field("refresh_token"), accountID: field("account_id"))
    }


    /// The ChatGPT account id: `tokens.account_id`, else the id token's claim (as Codex does).
    public var accountID: String? {
        tokens?.accountID ?? idTokenAuthClaims?["chatgpt_account_id"]?.stringValue
    }

    /// The plan named in the id token (`chatgpt_plan_type`), known before the first usage poll.
    public var planTypeHint: String? {
        idTokenAuthClaims?["chatgpt_plan_type"]?.stringValue?.lowercased()
    }


    /// Tokens are refreshed after eight days (as Codex does) or when the access token has expired.
    public static let refreshAge: TimeInterval = 8 * 24 * 3600

    public func needsRefresh(now: Date) -> Bool {
        guard !isAPIKeyMode, tokens?.refreshToken != nil else { return false }
        guard let lastRefresh, now.timeIntervalSince(lastRefresh) < Self.refreshAge else { return true }
        if let expiry = accessTokenExpiry, expiry <= now.addingTimeInterval(PoolPolicy.tokenRefreshMargin) { return true }
        return false
    }

    /// Applies a refresh answer: each non-empty token replaces the stored one; `last_refresh` is now.
    public mutating func applyRefresh(_ refreshed: TokenRefreshResponse, now: Date) {
        var tokens = document["tokens"]?.objectValue ?? [:]
        if let id = refreshed.idToken, !id.isEmpty { tokens["id_token"] = .string(id) }
        if let access = refreshed.accessToken, !access.isEmpty { tokens["access_token"] = .string(access) }
        if let refresh = refreshed.refreshToken, !refresh.isEmpty { tokens["refresh_token"] = .string(refresh) }
        document["tokens"] = .object(tokens)
        document["last_refresh"] = .string(Self.formatTimestamp(now))
        deriveTimes()
    }

    private mutating func deriveTimes() {
        lastRefresh = document["last_refresh"]?.stringValue.flatMap(Self.parseTimestamp)
        accessTokenExpiry = tokens.flatMap { JWTClaims.decode($0.accessToken)?["exp"]?.numberValue }
            .map { Date(timeIntervalSince1970: $0) }
    }

    /// Pretty-printed with sorted keys and a trailing newline, ready to write with mode 0600.
    public func serialized() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding a tree of plain JSON values cannot fail.
        var data = (try? encoder.encode(JSONValue.object(document))) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    private var idTokenAuthClaims: [String: JSONValue]? {
        tokens?.idToken.flatMap(JWTClaims.decode)?["https://api.openai.com/auth"]?.objectValue
    }

    /// The unverified claims of a JWT (nil for anything else), e.g. to recognise who issued a token.
    public static func claims(ofJWT token: String) -> [String: JSONValue]? {
        JWTClaims.decode(token)
    }

    static func parseTimestamp(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: text) { return date }
        return ISO8601DateFormatter().date(from: text)
    }

    static func formatTimestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Reads the (unverified) claims of a JWT. Only used for hints such as the account id and the
/// expiry of our own tokens; nothing is trusted for authorization.
enum JWTClaims {
    static func decode(_ token: String) -> [String: JSONValue]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]) else { return nil }
        return (try? JSONDecoder().decode(JSONValue.self, from: Data(payload)))?.objectValue
    }
}
