import Configuration
import Foundation
import NIOHTTP1
import OpenSSLTLS
import PoolCore

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
        let instance = InstanceClient(url: server, token: token, tls: tls)
        defer { instance.shutdown() }
        let body: [UInt8]
        do {
            body = try await instance.call(.GET, "/backend-api/wham/accounts/check")
        } catch let failure as InstanceClient.Failure {
            let hint = switch failure.status {
            case nil where server.usesTLS && caFile == nil: " (if its certificate is self-signed or from a private CA, pass that certificate or CA with --ca)"
            case 404: " (is this a codexpool, and is the URL its root?)"
            default: ""
            }
            throw Failure(description: failure.description + hint)
        }
        guard let account = JSONValue.parse(body)?["accounts"]?.arrayValue?.first?.objectValue, let id = account["id"]?.stringValue else {
            throw Failure(description: "\(server) did not answer like a codexpool (no account in its accounts/check answer)")
        }
        return Answer(accountID: id, planType: account["plan_type"]?.stringValue ?? "plus")
    }
}
