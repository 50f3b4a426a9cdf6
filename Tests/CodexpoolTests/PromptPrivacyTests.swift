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
        let fixture = try await ServeFixture.start(name: "privacy")
        try await fixture.stopAfter { () async throws in try await Self.run(fixture) }
    }

    static func run(_ fixture: ServeFixture) async throws {
        let (folder, config) = (fixture.folder, fixture.config)
        try fixture.writeConfig("""
            storage: {path: \(folder.path)/history.sqlite3}
            credentials:
              - {tag: a, credential_path: \(fixture.credentialPath)}
            users:
              - {name: dev, token: dev-token, credential: a}
            """)
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
    }
}
