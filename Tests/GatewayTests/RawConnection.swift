import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import TestSupport
import UpstreamHTTP

/// A plain TCP client for what a well-behaved HTTP client cannot send or cannot stream.
final class RawConnection: Sendable {
    private let channel: any Channel
    let received: AsyncStream<ByteBuffer>

    /// With `tls`, over TLS to `localhost`.
    init(port: Int, tls: OpenSSLContext? = nil) async throws {
        (channel, received) = try await RawTCPClient.connect(port: port) { channel in
            if let tls { try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: tls, serverName: "localhost")) }
        }
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

/// Reads a streamed HTTP response line by line (a status watch, an event stream): chunk sizes
/// and headers arrive as lines too. Used by one test task.
final class StreamedLines: @unchecked Sendable {
    private let connection: RawConnection
    private var iterator: AsyncStream<ByteBuffer>.AsyncIterator
    private var pending = ""

    /// Sends `GET path` with `headers` and reads what comes back.
    init(port: Int, path: String, headers: [(String, String)] = []) async throws {
        connection = try await RawConnection(port: port)
        iterator = connection.received.makeAsyncIterator()
        let fields = headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        try await connection.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(fields)\r\n".utf8))
    }

    /// The next line, without its end; nil when the connection ends.
    func next() async -> String? {
        while true {
            if let newline = pending.firstIndex(of: "\n") {
                defer { pending = String(pending[pending.index(after: newline)...]) }
                return String(pending[..<newline])
            }
            var current = iterator
            guard let chunk = await current.next() else { return nil }
            iterator = current
            // "\r\n" is one Character in Swift; make every line end in a plain "\n".
            pending += String(buffer: chunk).replacingOccurrences(of: "\r\n", with: "\n")
        }
    }

    func close() {
        connection.close()
    }
}

/// The NDJSON status watch, one JSON line at a time.
final class NDJSONWatch: Sendable {
    private let lines: StreamedLines

    init(port: Int, path: String) async throws {
        lines = try await StreamedLines(port: port, path: path)
    }

    /// The next line that looks like a JSON object (chunk sizes and headers are skipped).
    func nextLine() async throws -> String {
        while let line = await lines.next() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("{") { return trimmed }
        }
        throw CancellationError()
    }

    func close() {
        lines.close()
    }
}
