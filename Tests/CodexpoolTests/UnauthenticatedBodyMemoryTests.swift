import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// A body sent without a token is never read into memory: measured on a real `codexpool serve`
/// process, whose resident memory must not grow by the 10 MB it was sent.
@Suite(.timeLimit(.minutes(2))) struct UnauthenticatedBodyMemoryTests {
    @Test func aTenMegabyteBodyWithoutATokenLeavesTheServersMemoryAlone() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-memory-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("codexpool.yaml")
        try """
            listen: 127.0.0.1:0
            credentials:
              - tag: home
                credential_path: \(folder.path)/auth.json
            users:
              - name: alice
                token: alice-token
            """.write(to: config, atomically: true, encoding: .utf8)
        let server = ChildProcess(try ChildProcess.codexpoolExecutable, ["serve", "--config", config.path])
        try server.start()
        defer { server.terminate() }
        await server.waitForStandardError(containing: "ready")
        let port = try #require(Self.port(in: server.standardError))
        let pid = server.process.processIdentifier

        // Warm up the paths a refusal takes, then measure.
        #expect(try await Self.send(port: port, bodyBytes: 1000).hasPrefix("HTTP/1.1 401"))
        let before = try Self.residentKiB(pid)
        let answer = try await Self.send(port: port, bodyBytes: 10_000_000)
        let after = try Self.residentKiB(pid)
        #expect(answer.hasPrefix("HTTP/1.1 401"))
        #expect(after - before < 4096, "resident memory grew by \(after - before) KiB for a refused 10 MB body")
        kill(pid, SIGTERM)
        #expect(await server.exitStatus() == 0)
    }

    static func port(in log: String) -> Int? {
        guard let range = log.range(of: "listening on http://127.0.0.1:") else { return nil }
        return Int(log[range.upperBound...].prefix { $0.isNumber })
    }

    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(Int(line.split(whereSeparator: \.isWhitespace)[1]))
    }

    /// Sends a POST without a token announcing `bodyBytes`, then the body, and returns all the
    /// server wrote until it closed the connection.
    static func send(port: Int, bodyBytes: Int) async throws -> String {
        let (channel, stream) = try await RawTCPClient.connect(port: port)
        try await channel.writeAndFlush(ByteBuffer(string: "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(bodyBytes)\r\n\r\n"))
        var remaining = bodyBytes
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1 << 20)
        while remaining > 0 {
            let size = min(remaining, chunk.readableBytes)
            // The server may close as soon as the body is complete; a late write failing is fine.
            try? await channel.writeAndFlush(chunk.getSlice(at: 0, length: size)!)
            remaining -= size
        }
        var text = ""
        for await part in stream { text += String(buffer: part) }
        return text
    }
}
