import Foundation
import OpenSSLTLS
import PoolCore

/// The browser flow with PKCE (codex-login.md §2): an authorize URL to open, the redirect the
/// browser ends on (pasted, or caught by a one-shot listener), its `state` checked, its code
/// exchanged with the verifier made here.
struct BrowserSignIn {
    static let scope = "openid profile email offline_access"

    let client: SignInClient
    let redirectURI: String
    let verifier: String
    let state: String

    init(client: SignInClient, redirectURI: String) {
        self.client = client
        self.redirectURI = redirectURI
        verifier = Self.randomBase64URL(64)
        state = Self.randomBase64URL(32)
    }

    var challenge: String { Base64URL.encode(SHA256Digest.hash(Array(verifier.utf8))) }

    var authorizeURL: String {
        var components = URLComponents(string: client.base + "/oauth/authorize")
        components?.queryItems = [
            URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: SignInClient.clientID),
            URLQueryItem(name: "redirect_uri", value: redirectURI), URLQueryItem(name: "code_challenge", value: challenge),
            URLQueryItem(name: "code_challenge_method", value: "S256"), URLQueryItem(name: "state", value: state),
            URLQueryItem(name: "scope", value: Self.scope), URLQueryItem(name: "id_token_add_organizations", value: "true"),
            URLQueryItem(name: "codex_cli_simplified_flow", value: "true"),
            // The account picker every time: several accounts are often added from one browser.
            URLQueryItem(name: "prompt", value: "login"),
        ]
        return components?.string ?? client.base
    }

    /// The code in the URL the browser was sent back to, after checking it answers this sign-in.
    func code(fromRedirect text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: trimmed), let items = components.queryItems else {
            throw SignInClient.Failure(description: "that is not the address the browser ended on (expected …/auth/callback?code=…&state=…)")
        }
        let values = items.reduce(into: [String: String]()) { $0[$1.name] = $1.value }
        if let error = values["error"] {
            let description = values["error_description"] ?? ""
            let hint = description.contains("missing_codex_entitlement") ? " (this workspace has no Codex access)" : ""
            throw SignInClient.Failure(description: "the sign-in failed in the browser: \(error) \(description)\(hint)")
        }
        guard values["state"] == state else {
            throw SignInClient.Failure(description: "the address answers another sign-in (its state does not match); start again and paste the newest one")
        }
        guard let code = values["code"], !code.isEmpty else { throw SignInClient.Failure(description: "the address holds no code") }
        return code
    }

    func exchange(_ code: String) async throws -> (idToken: String, accessToken: String, refreshToken: String) {
        try await client.exchange(code: code, verifier: verifier, redirectURI: redirectURI)
    }

    static func randomBase64URL(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
