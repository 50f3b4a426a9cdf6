import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing
import UpstreamSimulator

/// Prompts and image data never reach the log, even at trace level: a `codexpool serve` process
/// answers a chat, an image generation and an image edit whose prompts carry a marker.
@Suite(.timeLimit(.minutes(2))) struct PromptPrivacyTests {
    @Test func promptsAndImagesStayOutOfTheLogAtTraceLevel() async throws {
        let account = SimulatedAccount(accountID: "a")
        let simulator = try await UpstreamSimulator.start(accounts: [account], group: MultiThreadedEventLoopGroup.singleton)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-privacy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try account.authJSON().write(to: folder.appendingPathComponent("a.json"), atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("codexpool.yaml")
        try """
            listen: 127.0.0.1:0
            storage: {path: \(folder.path)/history.sqlite3}
            upstream:
              base_url: \(simulator.baseURL)
              usage_url: \(simulator.usageURL)
              token_url: \(simulator.tokenURL)
            credentials:
              - {tag: a, credential_path: \(folder.path)/a.json}
            users:
              - {name: dev, token: dev-token, credential: a}
            """.write(to: config, atomically: true, encoding: .utf8)
        let server = ChildProcess(try ChildProcess.codexpoolExecutable, ["serve", "--config", config.path, "--log-level", "trace"])
        try server.start()
        defer { server.terminate() }
        await server.waitForStandardError(containing: "ready")
        let port = try #require(UnauthenticatedBodyMemoryTests.port(in: server.standardError))

        let pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAAAAgABVKJPXQAAAABJRU5ErkJggg=="
        let requests = [
            ("/v1/chat/completions", #"{"model":"gpt-5.5","messages":[{"role":"user","content":"MARKER-CHAT-7731"}]}"#),
            ("/v1/images/generations", #"{"prompt":"MARKER-IMAGE-5519"}"#),
            ("/v1/images/edits", #"{"prompt":"MARKER-EDIT-2284","images":[{"image_url":"data:image/png;base64,\#(pixel)"}]}"#),
        ]
        for (path, body) in requests {
            let (channel, stream) = try await RawTCPClient.connect(port: port)
            try await channel.writeAndFlush(ByteBuffer(string: "POST \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-token\r\nConnection: close\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
            var answer = ""
            for await chunk in stream { answer += String(buffer: chunk) }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(path): \(answer.prefix(300))")
        }
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.exitStatus() == 0)
        let log = server.standardError
        #expect(log.contains("MARKER") == false, "a prompt reached the log")
        #expect(log.contains(String(pixel.prefix(24))) == false, "image data reached the log")
        #expect(log.contains("dev-token") == false)
        // Nor the history (its rows, in the file or still in its write-ahead log).
        var history = try Data(contentsOf: folder.appendingPathComponent("history.sqlite3"))
        history += (try? Data(contentsOf: folder.appendingPathComponent("history.sqlite3-wal"))) ?? Data()
        #expect(history.range(of: Data("chat_completions".utf8)) != nil, "the chat's row is there")
        #expect(history.range(of: Data("MARKER".utf8)) == nil)
        await simulator.shutdown()
    }
}
