import Foundation
import PoolCore

/// The device-code flow (codex-login.md §1), for a machine without a browser: show a code, wait
/// for the user to approve it elsewhere, exchange the code the issuer then hands out.
struct DeviceCodeSignIn {
    /// How long a code lives (the issuer does not say; Codex assumes 15 minutes).
    static let lifetime: TimeInterval = 15 * 60
    static let slowDownStep: TimeInterval = 5

    let client: SignInClient
    /// Where the user is told what to do.
    let say: (String) -> Void

    func run() async throws -> (idToken: String, accessToken: String, refreshToken: String) {
        let start = try await client.postJSON("/api/accounts/deviceauth/usercode", .object(["client_id": .string(SignInClient.clientID)]))
        if start.status == 404 { throw SignInClient.Failure(description: "device sign-in is not enabled at \(client.base); use --paste or --listen") }
        guard start.status == 200, let id = start.json?["device_auth_id"]?.stringValue,
              let userCode = start.json?["user_code"]?.stringValue ?? start.json?["usercode"]?.stringValue else {
            throw SignInClient.Failure(description: "the issuer gave no device code (\(start.status)): \(start.errorMessage ?? "no reason given")")
        }
        var interval = start.json?["interval"].flatMap { $0.numberValue ?? $0.stringValue.flatMap(Double.init) } ?? 5
        interval = min(max(interval, 1), 60)
        say("""
        Open \(client.base)/codex/device in a browser signed in to the ChatGPT account to add, and enter the code

            \(userCode)

        (it expires in 15 minutes; never give it to anyone). Waiting for approval…
        """)
        let deadline = Date().addingTimeInterval(Self.lifetime)
        while Date() < deadline {
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            let poll = try await client.postJSON("/api/accounts/deviceauth/token", .object(["device_auth_id": .string(id), "user_code": .string(userCode)]))
            switch (poll.status, poll.errorCode) {
            case (200, _):
                guard let code = poll.json?["authorization_code"]?.stringValue, let verifier = poll.json?["code_verifier"]?.stringValue else {
                    throw SignInClient.Failure(description: "the issuer approved the code but sent no authorization code")
                }
                return try await client.exchange(code: code, verifier: verifier, redirectURI: client.base + "/deviceauth/callback")
            case (403, _), (404, _), (_, "authorization_pending"), (_, "deviceauth_authorization_unknown"):
                continue
            case (_, "slow_down"):
                interval += Self.slowDownStep
            case (_, "access_denied"):
                throw SignInClient.Failure(description: "the sign-in was denied in the browser; nothing was written")
            case (_, "expired_token"), (_, "deviceauth_expired"):
                throw SignInClient.Failure(description: "the code \(userCode) expired before it was approved; run codexpool login again")
            default:
                throw SignInClient.Failure(description: "the issuer ended the sign-in (\(poll.status)): \(poll.errorMessage ?? "no reason given")")
            }
        }
        throw SignInClient.Failure(description: "the code \(userCode) was not approved within 15 minutes; run codexpool login again")
    }
}
