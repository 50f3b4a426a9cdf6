import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import PoolCore
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// Upstream that does not answer, or drops a kept-alive connection as it is reused.
@Suite(.timeLimit(.minutes(1))) struct UpstreamTimeoutTests {
    @Test func anUpgradeWithoutA101InTimeGivesTheClientAClearError() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil,
                                                 upstreamTimeouts: UpstreamClient.Timeouts(upgrade: .milliseconds(300)))
        await waitForData(bed, tags: ["a"])
        bed.simulator.updateAccount("a") { $0.answerDelayMilliseconds = 60_000 }
        let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [])
        guard case .refused(let head, let body) = client.outcome else { Issue.record("\(String(describing: client.outcome))"); return }
        #expect(head.status == .badGateway)
        #expect(body.contains("did not answer the WebSocket upgrade within 0.3 s"), "\(body)")
        client.close()
        // The attempt's upstream connection is closed, not left waiting.
        try await bed.simulator.waitUntil { $0.closedConnections >= 1 && $0.openConnections <= 1 }
        await bed.stop()
    }

    @Test func aReusedConnectionClosedBeforeAnsweringIsRetriedOnANewOne() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        await waitForData(bed, tags: ["a"])
        // One client connection, so both requests run on the same event loop and its upstream pool.
        let connection = try await RawConnection(port: bed.server.port)
        let reader = ResponseReader(connection)
        let body = GatewayTestBed.turnBody
        let request = Array("POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        try await connection.send(request)
        #expect(try await reader.chunkedResponse().hasPrefix("HTTP/1.1 200"))
        bed.simulator.closeNextReusedConnection()
        try await connection.send(request)
        let second = try await reader.chunkedResponse()
        #expect(second.hasPrefix("HTTP/1.1 200"), "\(second.prefix(300))")
        #expect(second.contains("response.completed"))
        #expect(bed.simulator.modelRequests.count == 2, "the dropped request never reached the backend")
        connection.close()
        await bed.stop()
    }
}

extension ResponseReader {
    /// The next response with a chunked body (an event stream), up to its last chunk.
    func chunkedResponse() async throws -> String {
        var text = ""
        while !text.contains("\r\n0\r\n\r\n") {
            let part = try await next()
            text += part
            if text.hasPrefix("HTTP/1.1"), !text.lowercased().contains("transfer-encoding: chunked"), text.contains("\r\n\r\n") { break }
        }
        return text
    }
}
