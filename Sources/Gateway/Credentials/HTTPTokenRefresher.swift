import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

/// The OAuth refresh POST over the gateway's upstream client.
struct HTTPTokenRefresher: TokenRefresher {
    let client: UpstreamClient
    let group: any EventLoopGroup
    let url: EndpointURL
    let target: UpstreamTarget

    func postTokenRequest(body: Data) async throws -> TokenEndpointResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "accept", value: "application/json")
        let response = try await client.collect(target, method: .POST, path: url.path.isEmpty ? "/" : url.path, headers: headers,
                                                body: Array(body), on: group.next()).get()
        return TokenEndpointResponse(status: response.status, headers: response.headers.map { ($0.name, $0.value) }, body: Data(response.body))
    }
}
