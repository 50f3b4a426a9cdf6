import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import UpstreamHTTP

/// Talks to a running codexpool for the operator commands (`status`, `credentials`): one user
/// token, plain or TLS, answers read whole; an error answer becomes a message naming the status
/// and the server's own words.
final class InstanceClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The instance's answer status; nil when it could not be reached.
        var status: Int? = nil
    }

    let url: EndpointURL
    private let token: String?
    private let target: UpstreamTarget
    private let client = UpstreamClient(timeouts: UpstreamClient.Timeouts(connect: .seconds(5), read: .seconds(10)))

    init(url: EndpointURL, token: String?, tls: OpenSSLContext?) {
        self.url = url
        self.token = token
        target = UpstreamTarget(host: url.host, port: url.port, tls: url.usesTLS ? tls : nil, hostHeader: url.hostHeader)
    }

    /// The answer's body when the status is 2xx.
    func call(_ method: HTTPMethod, _ path: String) async throws -> [UInt8] {
        var headers = HTTPHeaders([("accept", "application/json")])
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        let response: UpstreamClient.CollectedResponse
        do {
            response = try await client.collect(target, method: method, path: url.path + path, headers: headers,
                                                on: MultiThreadedEventLoopGroup.singleton.next()).get()
        } catch {
            throw Failure(description: "cannot reach \(url): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            let message = JSONValue.parse(response.body)?["error"]?["message"]?.stringValue ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            let hint = response.status == 401 ? " (pass a user token in $CODEXPOOL_TOKEN or with --token-file)" : ""
            throw Failure(description: "\(url) answered \(response.status): \(message)\(hint)", status: response.status)
        }
        return response.body
    }

    func shutdown() {
        client.shutdown()
    }
}
