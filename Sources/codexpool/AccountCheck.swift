import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import UpstreamHTTP

/// Asks an instance which ChatGPT-mode account a user token stands for
/// (`GET /backend-api/wham/accounts/check`), which also proves the address, the certificate and
/// the token work before any file is written.
enum AccountCheck {
    struct Answer {
        var accountID: String
        var planType: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func ask(_ server: EndpointURL, token: String?, caFile: String?) async throws -> Answer {
        let tls: OpenSSLContext
        do {
            tls = try OpenSSLContext.client(TLSClientConfiguration(caFilePath: caFile))
        } catch {
            throw Failure(description: "cannot set up TLS: \(error)")
        }
        let client = UpstreamClient(timeouts: UpstreamClient.Timeouts(connect: .seconds(5), read: .seconds(10)))
        defer { client.shutdown() }
        let target = UpstreamTarget(host: server.host, port: server.port, tls: server.usesTLS ? tls : nil, hostHeader: server.hostHeader)
        var headers = HTTPHeaders([("accept", "application/json")])
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        let response: UpstreamClient.CollectedResponse
        do {
            response = try await client.collect(target, method: .GET, path: server.path + "/backend-api/wham/accounts/check", headers: headers,
                                                on: MultiThreadedEventLoopGroup.singleton.next()).get()
        } catch {
            let hint = server.usesTLS && caFile == nil
                ? " (if its certificate is self-signed or from a private CA, pass that certificate or CA with --ca)" : ""
            throw Failure(description: "cannot reach \(server): \(error)\(hint)")
        }
        let body = JSONValue.parse(response.body)
        guard response.status == 200 else {
            let message = body?.objectValue?["error"]?.objectValue?["message"]?.stringValue ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            let hint = response.status == 401 ? " (pass the user token in $CODEXPOOL_TOKEN or with --token-file)"
                : response.status == 404 ? " (is this a codexpool, and is the URL its root?)" : ""
            throw Failure(description: "\(server) answered \(response.status): \(message)\(hint)")
        }
        guard let account = body?.objectValue?["accounts"]?.arrayValue?.first?.objectValue, let id = account["id"]?.stringValue else {
            throw Failure(description: "\(server) did not answer like a codexpool (no account in its accounts/check answer)")
        }
        return Answer(accountID: id, planType: account["plan_type"]?.stringValue ?? "plus")
    }
}
