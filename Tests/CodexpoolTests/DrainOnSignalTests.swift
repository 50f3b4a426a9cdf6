import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing
import UpstreamSimulator

/// SIGTERM during a slow turn: the turn completes, and its usage is on disk when the process exits.
@Suite(.timeLimit(.minutes(2))) struct DrainOnSignalTests {
    @Test func aTurnInFlightFinishesAndItsUsageIsSaved() async throws {
        var account = SimulatedAccount(accountID: "a", deltaCount: 12)
        account.eventIntervalMilliseconds = 100
        let fixture = try await ServeFixture.start(account, name: "drain")
        try await fixture.stopAfter { () async throws in try await Self.run(fixture) }
    }

    static func run(_ fixture: ServeFixture) async throws {
        let (folder, config) = (fixture.folder, fixture.config)
        let usages = folder.appendingPathComponent("usages.json")
        try fixture.writeConfig("""
            credentials:
              - tag: a
                credential_path: \(fixture.credentialPath)
                usages_path: \(usages.path)
            """)
        let server = ChildProcess(try ChildProcess.codexpoolExecutable, ["serve", "--config", config.path])
        try server.start()
        defer { server.terminate() }
        await server.waitForStandardError(containing: "ready")
        let port = try #require(UnauthenticatedBodyMemoryTests.port(in: server.standardError))

        let (channel, stream) = try await RawTCPClient.connect(port: port)
        let body = #"{"model":"gpt-5.5","stream":true,"store":false,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
        try await channel.writeAndFlush(ByteBuffer(string: "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        var received = ""
        var iterator = stream.makeAsyncIterator()
        while !received.contains("response.output_text.delta"), let chunk = await iterator.next() { received += String(buffer: chunk) }
        // The answer is under way (about a second of it left): now the signal.
        kill(server.process.processIdentifier, SIGTERM)
        while let chunk = await iterator.next() { received += String(buffer: chunk) }
        #expect(received.contains("event: response.completed"), "the turn was cut: \(received.suffix(300))")
        #expect(await server.exitStatus() == 0, "\(server.standardError)")

        let saved = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: usages)) as? [String: Any], "no usage file")
        let combinations = try #require(saved["combinations"] as? [[String: Any]])
        let total = try #require(combinations.first?["total"] as? [String: Any])
        #expect(total["request_count"] as? Int == 1)
        #expect(total["input_tokens"] as? Int == 120)
        let mode = try FileManager.default.attributesOfItem(atPath: usages.path)[.posixPermissions] as? NSNumber
        #expect(mode?.uint16Value == 0o600)
    }
}
