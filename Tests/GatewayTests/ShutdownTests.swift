import Foundation
@testable import Gateway
import NIOCore
import NIOWebSocket
import Testing
import UpstreamHTTP
import UpstreamSimulator

@Suite(.timeLimit(.minutes(1))) struct ShutdownTests {
    @Test func drainClosesWebSocketsWithGoingAwayAndStopsAccepting() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil)
        await waitForData(bed, tags: ["a"])
        let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [])
        guard case .upgraded = client.outcome else { Issue.record("not upgraded"); return }
        let port = bed.server.port
        await bed.server.shutdown(gracePeriod: .seconds(5))
        var closeCode: UInt16?
        while let frame = await client.nextFrame() {
            if frame.opcode == .connectionClose { closeCode = frame.unmaskedData.getInteger(at: frame.unmaskedData.readerIndex) }
        }
        #expect(closeCode == 1001)
        #expect(bed.server.connectionCount == 0)
        // Nobody listens any more.
        await #expect(throws: (any Error).self) { _ = try await RawConnection(port: port) }
        await bed.simulator.shutdown()
    }

    @Test func drainLetsARunningStreamEndWithinTheGracePeriod() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", behavior: .stallMidStream)], balancer: nil)
        await waitForData(bed, tags: ["a"])
        let connection = try await RawConnection(port: bed.server.port)
        let body = GatewayTestBed.turnBody
        try await connection.send(Array("POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        var received = ""
        var iterator = connection.received.makeAsyncIterator()
        while !received.contains("response.created"), let chunk = await iterator.next() { received += String(buffer: chunk) }
        // The stream never finishes by itself: the grace period ends it, and shutdown returns.
        await bed.server.shutdown(gracePeriod: .milliseconds(300))
        while await iterator.next() != nil {}
        #expect(bed.server.connectionCount == 0)
        await bed.simulator.shutdown()
    }
}
