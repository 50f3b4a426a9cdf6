import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import UpstreamHTTP

/// The issuer's endpoints `codexpool login` uses (codex-login.md §0–2), over HTTP(S).
final class SignInClient: Sendable {
    static let clientID = "app_EMoamEEZ73f0CkXaXp7hrann"

    struct Answer {
        var status: Int
        var json: JSONValue?
        /// `error.code`, a string `error`, or a top-level `code` (the issuer spells it several ways).
        var errorCode: String? {
            json?["error"]?["code"]?.stringValue ?? json?["error"]?.stringValue ?? json?["code"]?.stringValue
        }
        var errorMessage: String? {
            json?["error"]?["message"]?.stringValue ?? json?["error_description"]?.stringValue ?? errorCode
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let issuer: EndpointURL
    private let target: UpstreamTarget
    private let client = UpstreamClient(timeouts: UpstreamClient.Timeouts(connect: .seconds(10), read: .seconds(30)))

    init(issuer: EndpointURL) throws {
        self.issuer = issuer
        let tls = try OpenSSLContext.client(TLSClientConfiguration())
        target = UpstreamTarget(host: issuer.host, port: issuer.port, tls: issuer.usesTLS ? tls : nil, hostHeader: issuer.hostHeader)
    }

    /// The issuer's base as a string, without a trailing slash.
    var base: String { issuer.description }

    func postJSON(_ path: String, _ body: JSONValue) async throws -> Answer {
        try await post(path, body: body.serialized, contentType: "application/json")
    }

    func postForm(_ path: String, _ fields: [(String, String)]) async throws -> Answer {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let encoded = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        return try await post(path, body: Array(encoded.utf8), contentType: "application/x-www-form-urlencoded")
    }

    private func post(_ path: String, body: [UInt8], contentType: String) async throws -> Answer {
        let headers = HTTPHeaders([("content-type", contentType), ("accept", "application/json"), ("originator", "codexpool")])
        do {
            let response = try await client.collect(target, method: .POST, path: issuer.path + path, headers: headers, body: body,
                                                     on: MultiThreadedEventLoopGroup.singleton.next()).get()
            return Answer(status: response.status, json: JSONValue.parse(response.body))
        } catch {
            throw Failure(description: "cannot reach \(base): \(error)")
        }
    }

    /// Exchanges an authorization code for tokens (device and browser flows alike).
    func exchange(code: String, verifier: String, redirectURI: String) async throws -> (idToken: String, accessToken: String, refreshToken: String) {
        let answer = try await postForm("/oauth/token", [
            ("grant_type", "authorization_code"), ("client_id", Self.clientID), ("code", code), ("redirect_uri", redirectURI),
            ("code_verifier", verifier),
        ])
        guard answer.status == 200, let access = answer.json?["access_token"]?.stringValue, let refresh = answer.json?["refresh_token"]?.stringValue else {
            throw Failure(description: "the issuer refused the sign-in code (\(answer.status)): \(answer.errorMessage ?? "no reason given")")
        }
        return (answer.json?["id_token"]?.stringValue ?? access, access, refresh)
    }

    func shutdown() {
        client.shutdown()
    }
}
