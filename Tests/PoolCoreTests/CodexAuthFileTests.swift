import Foundation
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct CodexAuthFileTests {
    @Test func parsesEveryFieldAndKeepsUnknownOnes() throws {
        let idToken = jwt(["https://api.openai.com/auth": ["chatgpt_account_id": "acct-from-jwt", "chatgpt_plan_type": "Pro"]])
        let text = """
            {"OPENAI_API_KEY": null, "auth_mode": "chatgpt", "future": {"nested": [1, 2.5, true, null]},
             "tokens": {"id_token": "\(idToken)", "access_token": "at", "refresh_token": "rt"},
             "last_refresh": "2027-01-15T08:00:00.123Z"}
            """
        var auth = try CodexAuthFile(data: Data(text.utf8))
        #expect(!auth.isAPIKeyMode)
        #expect(auth.tokens?.accessToken == "at" && auth.tokens?.refreshToken == "rt")
        #expect(auth.accountID == "acct-from-jwt", "taken from the id token when tokens.account_id is missing")
        #expect(auth.planTypeHint == "pro")
        #expect(abs(auth.lastRefresh!.timeIntervalSince(t0) - 0.123) < 0.001)

        auth.applyRefresh(TokenRefreshResponse(accessToken: "at2", refreshToken: "rt2"), now: t0 + 60)
        let written = try CodexAuthFile(data: auth.serialized())
        #expect(written.document["auth_mode"] == .string("chatgpt"))
        #expect(written.document["future"] == .object(["nested": .array([.integer(1), .number(2.5), .bool(true), .null])]))
        #expect(written.tokens?.idToken == idToken, "an empty id_token in the answer keeps the old one")
        #expect(written.tokens?.accessToken == "at2" && written.tokens?.refreshToken == "rt2")
        #expect(written.lastRefresh == t0 + 60)
        let serialized = String(decoding: auth.serialized(), as: UTF8.self)
        #expect(serialized.hasPrefix("{\n  \"OPENAI_API_KEY\" : null,\n  \"auth_mode\""), "pretty-printed with two spaces")
        #expect(serialized.hasSuffix("}\n"))
    }

    @Test func apiKeyMode() throws {
        let auth = try CodexAuthFile(data: Data(#"{"OPENAI_API_KEY":"sk-test"}"#.utf8))
        #expect(auth.isAPIKeyMode && auth.apiKey == "sk-test")
        #expect(!auth.needsRefresh(now: t0))
    }

    @Test func malformedFiles() {
        #expect(throws: CodexAuthFile.ParseError.notJSON) { try CodexAuthFile(data: Data("{".utf8)) }
        #expect(throws: CodexAuthFile.ParseError.notJSON) { try CodexAuthFile(data: Data("[]".utf8)) }
        #expect(throws: CodexAuthFile.ParseError.noCredentials) { try CodexAuthFile(data: Data(#"{"OPENAI_API_KEY":""}"#.utf8)) }
        #expect(throws: CodexAuthFile.ParseError.noCredentials) { try CodexAuthFile(data: Data(#"{"tokens":{"access_token":7}}"#.utf8)) }
    }

    @Test func refreshIsDueAfterEightDaysOrAtExpiry() throws {
        #expect(try CodexAuthFile(data: authJSON(lastRefresh: t0 - 9 * 24 * hour)).needsRefresh(now: t0))
        #expect(try !CodexAuthFile(data: authJSON(lastRefresh: t0 - 7 * 24 * hour)).needsRefresh(now: t0))
        #expect(try CodexAuthFile(data: authJSON(lastRefresh: nil)).needsRefresh(now: t0))
        let expired = jwt(["exp": t0.timeIntervalSince1970 - 10])
        #expect(try CodexAuthFile(data: authJSON(access: expired, lastRefresh: t0 - hour)).needsRefresh(now: t0))
        let valid = jwt(["exp": t0.timeIntervalSince1970 + hour])
        #expect(try !CodexAuthFile(data: authJSON(access: valid, lastRefresh: t0 - hour)).needsRefresh(now: t0))
    }

    @Test func refreshRequestAndAnswers() throws {
        let body = try JSONDecoder().decode([String: String].self, from: TokenRefresh.requestBody(refreshToken: "rt"))
        #expect(body == ["grant_type": "refresh_token", "refresh_token": "rt", "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
                         "scope": "openid profile email"])
        let reused = TokenEndpointResponse(status: 401, body: Data(#"{"error":{"code":"refresh_token_reused","message":"x"}}"#.utf8))
        #expect(TokenRefresh.interpret(reused) == .failure(.terminal(code: "refresh_token_reused")))
        let grant = TokenEndpointResponse(status: 400, body: Data(#"{"error":"invalid_grant"}"#.utf8))
        #expect(TokenRefresh.interpret(grant) == .failure(.terminal(code: "invalid_grant")))
        let limited = TokenEndpointResponse(status: 429, headers: [("Retry-After", "120")], body: Data())
        #expect(TokenRefresh.interpret(limited) == .failure(.rateLimited(retryAfter: 120)))
        #expect(TokenRefresh.interpret(TokenEndpointResponse(status: 500, body: Data("oops".utf8))) == .failure(.rejected(status: 500, detail: "no error code")))
        #expect(TokenRefresh.interpret(TokenEndpointResponse(status: 200, body: Data("{}".utf8))) == .failure(.rejected(status: 200, detail: "answer without an access token")))
    }
}
