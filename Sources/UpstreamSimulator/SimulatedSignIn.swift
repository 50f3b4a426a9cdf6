public import Foundation
import OpenSSLTLS
import Synchronization

/// The issuer's side of signing an account in (codex-login.md §1–2): device codes a test approves,
/// denies or lets expire, a browser sign-in that redirects with a code, and the code exchange that
/// checks the PKCE verifier. Codes are single-use.
struct SimulatedSignIn {
    static let clientID = "app_EMoamEEZ73f0CkXaXp7hrann"

    enum DeviceOutcome: Equatable {
        case pending
        case approved(account: String)
        case denied
        case expired
    }

    struct DeviceLogin {
        var userCode: String
        var outcome: DeviceOutcome = .pending
    }

    struct IssuedCode {
        var account: String
        var challenge: String
        var redirectURI: String
    }

    var deviceLogins: [String: DeviceLogin] = [:]
    var codes: [String: IssuedCode] = [:]
    var pollTimes: [Date] = []
    var slowDownNextPoll = false
    /// Whom the simulated browser is signed in as.
    var browserAccount: String?
    /// Seconds between polls the issuer asks for.
    var interval = 1

    static func challenge(for verifier: String) -> String {
        SimulatedAccount.base64URL(Data(SHA256Digest.hash(Array(verifier.utf8))))
    }

    static func random(_ count: Int) -> String {
        SimulatedAccount.base64URL(Data((0..<count).map { _ in UInt8.random(in: 0...255) }))
    }
}

extension UpstreamSimulator {
    /// The user approves the device code in their browser, signed in as `account`.
    public func approveDeviceLogin(userCode: String, account: String) { setDeviceOutcome(userCode, .approved(account: account)) }
    public func denyDeviceLogin(userCode: String) { setDeviceOutcome(userCode, .denied) }
    public func expireDeviceLogin(userCode: String) { setDeviceOutcome(userCode, .expired) }
    /// The next device-code poll is told to slow down.
    public func slowDownNextDevicePoll() { mutate { $0.signIn.slowDownNextPoll = true } }
    /// When the device-code token endpoint was polled.
    public var deviceLoginPollTimes: [Date] { state.withLock { $0.signIn.pollTimes } }
    /// The account the simulated browser signs in as on `GET /oauth/authorize`.
    public func signInBrowser(as account: String) { mutate { $0.signIn.browserAccount = account } }

    private func setDeviceOutcome(_ userCode: String, _ outcome: SimulatedSignIn.DeviceOutcome) {
        mutate { state in
            for (id, login) in state.signIn.deviceLogins where login.userCode == userCode { state.signIn.deviceLogins[id]?.outcome = outcome }
        }
    }

    /// `POST /api/accounts/deviceauth/usercode`.
    func deviceUserCode(_ request: [String: Any]) -> (status: Int, json: [String: Any]) {
        guard request["client_id"] as? String == SimulatedSignIn.clientID else {
            return (400, ["error": ["type": "invalid_request_error", "code": "invalid_client", "message": "unknown client_id"]])
        }
        return mutate { state in
            let id = "deviceauth_" + SimulatedSignIn.random(12)
            let code = String(format: "%04X-%04X", UInt16.random(in: 0...UInt16.max), UInt16.random(in: 0...UInt16.max))
            state.signIn.deviceLogins[id] = SimulatedSignIn.DeviceLogin(userCode: code)
            return (200, ["device_auth_id": id, "user_code": code, "interval": String(state.signIn.interval)])
        }
    }

    /// `POST /api/accounts/deviceauth/token`: still pending (403), slow down, denied, expired, or the
    /// server-made PKCE pair with an authorization code.
    func deviceToken(_ request: [String: Any], issuer: String) -> (status: Int, json: [String: Any]) {
        mutate { state in
            state.signIn.pollTimes.append(Date())
            guard let id = request["device_auth_id"] as? String, let login = state.signIn.deviceLogins[id],
                  request["user_code"] as? String == login.userCode else {
                return (400, ["error": ["type": "invalid_request_error", "code": "invalid_request", "message": "unknown device authorization"]])
            }
            if state.signIn.slowDownNextPoll {
                state.signIn.slowDownNextPoll = false
                return (400, ["error": ["type": "invalid_request_error", "code": "slow_down", "message": "Polling too fast; slow down."]])
            }
            switch login.outcome {
            case .pending:
                return (403, ["error": ["type": "invalid_request_error", "code": "deviceauth_authorization_unknown",
                                        "message": "Device authorization is unknown. Please try again."]])
            case .denied:
                return (400, ["error": ["type": "invalid_request_error", "code": "access_denied", "message": "The sign-in was denied."]])
            case .expired:
                return (400, ["error": ["type": "invalid_request_error", "code": "deviceauth_expired", "message": "The device code has expired."]])
            case .approved(let account):
                state.signIn.deviceLogins[id] = nil
                let verifier = SimulatedSignIn.random(64)
                let challenge = SimulatedSignIn.challenge(for: verifier)
                let code = "ac_" + SimulatedSignIn.random(16)
                state.signIn.codes[code] = SimulatedSignIn.IssuedCode(account: account, challenge: challenge, redirectURI: issuer + "/deviceauth/callback")
                return (200, ["authorization_code": code, "code_challenge": challenge, "code_verifier": verifier])
            }
        }
    }

    /// `GET /oauth/authorize`: the browser, already signed in, is sent back with a code.
    func authorize(_ query: [String: String]) -> (status: Int, location: String?, json: [String: Any]) {
        guard query["client_id"] == SimulatedSignIn.clientID, query["response_type"] == "code", query["code_challenge_method"] == "S256",
              let challenge = query["code_challenge"], let redirect = query["redirect_uri"], let stateToken = query["state"] else {
            return (400, nil, ["error": ["code": "invalid_request", "message": "not a PKCE authorization request"]])
        }
        return mutate { state in
            guard let account = state.signIn.browserAccount ?? state.accounts.keys.sorted().first else {
                return (400, nil, ["error": ["code": "access_denied", "message": "no account"]])
            }
            let code = "ac_" + SimulatedSignIn.random(16)
            state.signIn.codes[code] = SimulatedSignIn.IssuedCode(account: account, challenge: challenge, redirectURI: redirect)
            var components = URLComponents(string: redirect)
            components?.queryItems = [URLQueryItem(name: "code", value: code), URLQueryItem(name: "state", value: stateToken)]
            return (302, components?.string, [:])
        }
    }

    /// `grant_type=authorization_code`: the code, once, with the redirect URI it was issued for and
    /// the verifier whose S256 is its challenge.
    func exchangeCode(_ fields: [String: String]) -> (status: Int, json: [String: Any]) {
        mutate { state in
            guard fields["client_id"] == SimulatedSignIn.clientID, let code = fields["code"], let issued = state.signIn.codes.removeValue(forKey: code) else {
                return (400, ["error": "invalid_grant", "error_description": "unknown or used authorization code"])
            }
            guard fields["redirect_uri"] == issued.redirectURI else {
                return (400, ["error": "invalid_grant", "error_description": "redirect_uri does not match the authorization request"])
            }
            guard let verifier = fields["code_verifier"], SimulatedSignIn.challenge(for: verifier) == issued.challenge else {
                return (400, ["error": "invalid_grant", "error_description": "code_verifier does not match the code challenge"])
            }
            guard var account = state.accounts[issued.account] else {
                return (400, ["error": "invalid_grant", "error_description": "no such account"])
            }
            let access = SimulatedAccount.accessTokenJWT(accountID: account.accountID, planType: account.rateLimits.planType,
                                                         expiresAt: Date().addingTimeInterval(3600))
            account.accessTokens.insert(access)
            if !account.refreshToken.isEmpty { account.usedRefreshTokens.insert(account.refreshToken) }
            account.refreshToken = "refresh-\(account.accountID)-\(SimulatedSignIn.random(6))"
            state.accounts[account.accountID] = account
            return (200, ["id_token": access, "access_token": access, "refresh_token": account.refreshToken, "token_type": "Bearer", "expires_in": 3600])
        }
    }
}
