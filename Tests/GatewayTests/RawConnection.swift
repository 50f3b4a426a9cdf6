import Foundation
import NIOCore
import NIOPosix
import TestSupport
import UpstreamHTTP

/// A plain TCP client for what a well-behaved HTTP client cannot send or cannot stream.
final class RawConnection: Sendable {
    private let channel: any Channel
    let received: AsyncStream<ByteBuffer>

    init(port: Int) async throws {
        (channel, received) = try await RawTCPClient.connect(port: port)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// A streamed Codex turn (`GatewayTestBed.turnBody`) posted to `/v1/responses`.
    func sendTurn(authorization: String? = nil) async throws {
        let body = GatewayTestBed.turnBody
        let credentials = authorization.map { "Authorization: \($0)\r\n" } ?? ""
        try await send(Array(("POST /v1/responses HTTP/1.1\r\nHost: x\r\n\(credentials)Content-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)").utf8))
    }

    func close() {
        channel.close(promise: nil)
    }

    /// What arrived up to and including the first `marker` (everything, if the connection ends first).
    func readUntil(_ marker: String) async -> String {
        var text = ""
        for await chunk in received {
            text += String(buffer: chunk)
            if let range = text.range(of: marker) { return String(text[..<range.upperBound]) }
        }
        return text
    }
}

enum RawSocket {
    /// Sends bytes and returns everything received until the server closes.
    static func exchange(port: Int, bytes: [UInt8]) async throws -> String {
        let connection = try await RawConnection(port: port)
        try await connection.send(bytes)
        var text = ""
        for await chunk in connection.received { text += String(buffer: chunk) }
        return text
    }
}

/// Reads a streamed HTTP response line by line (the NDJSON status watch). Used by one test task.
final class NDJSONWatch: @unchecked Sendable {
    private let connection: RawConnection
    private var iterator: AsyncStream<ByteBuffer>.AsyncIterator
    private var pending = ""

    init(port: Int, path: String) async throws {
        connection = try await RawConnection(port: port)
        iterator = connection.received.makeAsyncIterator()
        try await connection.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
    }

    /// The next line that looks like a JSON object (chunk sizes and headers are skipped).
    func nextLine() async throws -> String {
        while true {
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline]).trimmingCharacters(in: .whitespacesAndNewlines)
                pending = String(pending[pending.index(after: newline)...])
                if line.hasPrefix("{") { return line }
            }
            var current = iterator
            guard let chunk = await current.next() else { throw CancellationError() }
            iterator = current
            // "\r\n" is one Character in Swift; make every line end in a plain "\n".
            pending += String(buffer: chunk).replacingOccurrences(of: "\r\n", with: "\n")
        }
    }

    func close() {
        connection.close()
    }
}
