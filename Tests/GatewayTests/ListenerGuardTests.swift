import Configuration
import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import PoolCore
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The listener on a public address: nothing is read or forwarded before authentication, and
/// every cap and timeout holds against clients that misbehave on purpose.
@Suite(.timeLimit(.minutes(3))) struct ListenerGuardTests {
    static let user = GatewayTestBed.User(name: "alice", token: "alice-token", credential: "a")

    static func start(_ limits: ListenerLimits = GatewayTestBed.patientLimits) async throws -> GatewayTestBed {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], balancer: nil, users: [user], limits: limits)
        await waitForData(bed, tags: ["a"])
        return bed
    }

    static func head(_ path: String = "/v1/responses", token: String? = nil, extra: String = "") -> [UInt8] {
        let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        return Array("POST \(path) HTTP/1.1\r\nHost: x\r\n\(authorization)Content-Type: application/json\r\n\(extra)\r\n".utf8)
    }

    @Test func aRequestWithoutATokenIsRefusedFromItsHeadAloneAndItsBodyIsDropped() async throws {
        let bed = try await Self.start()
        let connection = try await RawConnection(port: bed.server.port)
        let reader = ResponseReader(connection)
        // A 10 MB body is announced; not one byte of it is sent before the answer arrives.
        try await connection.send(Self.head(extra: "Content-Length: 10000000\r\n"))
        let answer = try await reader.response()
        #expect(answer.hasPrefix("HTTP/1.1 401"))
        #expect(answer.lowercased().contains("connection: close"))
        #expect(answer.contains(#""message":"missing api key""#))
        // The body may still come; it is dropped, and the connection closes once it is complete.
        let megabyte = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<9 { try await connection.send(megabyte) }
        try await connection.send([UInt8](repeating: UInt8(ascii: "x"), count: 10_000_000 - 9 * (1 << 20)))
        #expect(await reader.untilClosed() == "")
        #expect(bed.simulator.modelRequests.isEmpty)
        let metrics = try await bed.waitForScrape { $0.value("codexpool_refusals_total", ["reason": "unauthenticated"]) == 1 }
        #expect(metrics.value("codexpool_refusals_total", ["reason": "unauthenticated"]) == 1)
        await bed.stop()
    }

    @Test func expectContinueIsAnsweredOnlyAfterAuthentication() async throws {
        let bed = try await Self.start()
        let body = GatewayTestBed.turnBody
        let good = try await RawConnection(port: bed.server.port)
        let goodReader = ResponseReader(good)
        try await good.send(Self.head(token: "alice-token", extra: "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n"))
        #expect(try await goodReader.response().hasPrefix("HTTP/1.1 100 Continue"))
        try await good.send(Array(body.utf8))
        let answer = try await goodReader.response()
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        good.close()

        let bad = try await RawConnection(port: bed.server.port)
        let badReader = ResponseReader(bad)
        try await bad.send(Self.head(token: "wrong", extra: "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n"))
        let refusal = try await badReader.response()
        #expect(refusal.hasPrefix("HTTP/1.1 401"), "no 100 Continue for a refused request: \(refusal)")
        // The client was told not to send its body: the connection closes without waiting for it.
        #expect(await badReader.untilClosed() == "")
        await bed.stop()
    }

    @Test func aBodyOverTheLimitIsRefusedBeforeItIsReadOrAsItGrows() async throws {
        let bed = try await Self.start(ListenerLimits(maxBody: 4096, headerTimeout: 600))
        let announced = try await RawConnection(port: bed.server.port)
        let announcedReader = ResponseReader(announced)
        try await announced.send(Self.head(token: "alice-token", extra: "Content-Length: 5000\r\n"))
        #expect(try await announcedReader.response().hasPrefix("HTTP/1.1 413"))
        announced.close()

        let chunked = try await RawConnection(port: bed.server.port)
        let chunkedReader = ResponseReader(chunked)
        try await chunked.send(Self.head(token: "alice-token", extra: "Transfer-Encoding: chunked\r\n"))
        let chunk = String(repeating: "y", count: 3000)
        try await chunked.send(Array("bb8\r\n\(chunk)\r\nbb8\r\n\(chunk)\r\n".utf8))
        let answer = try await chunkedReader.response()
        #expect(answer.hasPrefix("HTTP/1.1 413"))
        #expect(answer.contains("request_too_large"))
        chunked.close()
        #expect(bed.simulator.modelRequests.isEmpty)
        await bed.stop()
    }

    @Test func headersTrickledInAreCutAtTheHeaderTimeout() async throws {
        let bed = try await Self.start(ListenerLimits(headerTimeout: 1))
        let connection = try await RawConnection(port: bed.server.port)
        let reader = ResponseReader(connection)
        // One byte every 100 ms: bytes keep arriving, the head never completes.
        let trickle = Task {
            for byte in "POST /v1/responses HTTP/1.1\r\nHost: x\r\nX-Padding: ".utf8 + Array(repeating: UInt8(ascii: "a"), count: 500) {
                guard !Task.isCancelled else { return }
                try? await connection.send([byte])
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let answer = try await reader.response()
        trickle.cancel()
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(await reader.untilClosed() == "")
        await trickle.value
        let metrics = try await bed.waitForScrape { $0.value("codexpool_refusals_total", ["reason": "header_timeout"]) == 1 }
        #expect(metrics.value("codexpool_refusals_total", ["reason": "header_timeout"]) == 1)
        await bed.stop()
    }

    @Test func anIdleKeepAliveConnectionIsClosed() async throws {
        let bed = try await Self.start(ListenerLimits(headerTimeout: 600, idleTimeout: 0.5))
        let connection = try await RawConnection(port: bed.server.port)
        let reader = ResponseReader(connection)
        try await connection.send(Array("GET /ocm/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n\r\n".utf8))
        #expect(try await reader.response().hasPrefix("HTTP/1.1 200"))
        // Nothing more is sent: the server closes the connection by itself.
        _ = await reader.untilClosed()
        await bed.stop()
    }

    @Test func aRequestHeadOverTheLimitGets431() async throws {
        let bed = try await Self.start(ListenerLimits(maxHeaderBytes: 2048, headerTimeout: 600))
        let connection = try await RawConnection(port: bed.server.port)
        let reader = ResponseReader(connection)
        try await connection.send(Self.head(token: "alice-token", extra: "X-Padding: \(String(repeating: "p", count: 4096))\r\n"))
        let answer = try await reader.response()
        #expect(answer.hasPrefix("HTTP/1.1 431"), "\(answer)")
        #expect(answer.contains("request_header_too_large"))
        _ = await reader.untilClosed()
        await bed.stop()
    }

    @Test func onlyKnownRoutesWithPlainPathsReachACredential() async throws {
        let bed = try await Self.start()
        let cases: [(String, Int)] = [
            ("/v1/../backend-api/x", 400), ("/v1/%2e%2e/backend-api/x", 400), ("/v1//responses", 400), ("/v1/./responses", 400),
            ("/v1/responses%2Fcompact", 400), ("/v1/anything-unknown", 404), ("/backend-api/codex/anything", 404), ("/v1", 404),
        ]
        for (path, status) in cases {
            let response = try await bed.request(.POST, path, headers: [("authorization", "Bearer alice-token")], json: GatewayTestBed.turnBody)
            #expect(response.status == status, "\(path)")
            #expect(response.text.contains(#""error":{"#), "\(path): an OpenAI-shaped error")
        }
        #expect(bed.simulator.modelRequests.isEmpty, "nothing went upstream")
        let served = try await bed.request(.POST, "/v1/responses", headers: [("authorization", "Bearer alice-token")], json: GatewayTestBed.turnBody)
        #expect(served.status == 200)
        await bed.stop()
    }

    @Test func failedAuthenticationsAreThrottledPerAddress() async throws {
        let bed = try await Self.start(ListenerLimits(headerTimeout: 600, failedAuthenticationsPerMinute: 3))
        for token in ["one", "two", "three"] {
            #expect(try await bed.request(headers: [("authorization", "Bearer \(token)")], json: GatewayTestBed.turnBody).status == 401)
        }
        // The fourth try is refused before its token is looked at, even a right one.
        for token in ["four", "alice-token"] {
            let throttled = try await bed.request(headers: [("authorization", "Bearer \(token)")], json: GatewayTestBed.turnBody)
            #expect(throttled.status == 429)
            #expect(Int(throttled.header("retry-after") ?? "") ?? 0 >= 1)
            #expect(throttled.text.contains("too_many_failed_authentications"))
        }
        let upgrade = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer alice-token")])
        guard case .refused(let head, _) = upgrade.outcome else { Issue.record("upgraded while throttled"); return }
        #expect(head.status.code == 429)
        upgrade.close()
        await bed.stop()
    }

    @Test func theBearerSchemeIsCaseInsensitive() async throws {
        let bed = try await Self.start()
        for scheme in ["bearer", "BEARER", "Bearer"] {
            #expect(try await bed.request(headers: [("authorization", "\(scheme) alice-token")], json: GatewayTestBed.turnBody).status == 200)
        }
        await bed.stop()
    }

    @Test func connectionsBeyondTheCapGet503() async throws {
        let cap = 4096
        let attempts = 5000
        let bed = try await Self.start(ListenerLimits(headerTimeout: 600, maxConnections: cap))
        let refused = RefusalCounter()
        var channels: [any Channel] = []
        for _ in 0..<attempts {
            let channel = try await ClientBootstrap(group: GatewayTestBed.group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FirstBytes(counter: refused)) }
                }
                .connect(host: "127.0.0.1", port: bed.server.port).get()
            channels.append(channel)
        }
        await refused.wait(for: attempts - cap)
        #expect(refused.count == attempts - cap)
        #expect(bed.server.connectionCount == cap)
        for channel in channels { channel.close(promise: nil) }
        for channel in channels { try? await channel.closeFuture.get() }
        let metrics = try await bed.waitForScrape { $0.value("codexpool_refusals_total", ["reason": "too_many_connections"]) == Double(attempts - cap) }
        #expect(metrics.value("codexpool_refusals_total", ["reason": "too_many_connections"]) == Double(attempts - cap))
        await bed.stop()
    }

    @Test func aWebSocketMessageOverTheLimitEndsTheSessionWith1009() async throws {
        let bed = try await Self.start(ListenerLimits(maxWebSocketMessage: 4096, headerTimeout: 600))
        let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("authorization", "Bearer alice-token")])
        guard case .upgraded = client.outcome else { Issue.record("not upgraded"); return }
        try await client.send(#"{"type":"response.create","padding":"\#(String(repeating: "z", count: 8192))"}"#)
        var closeCode: UInt16?
        while let frame = await client.nextFrame() {
            if frame.opcode == .connectionClose {
                closeCode = frame.unmaskedData.getInteger(at: frame.unmaskedData.readerIndex, as: UInt16.self)
                break
            }
        }
        #expect(closeCode == 1009)
        client.close()
        await bed.stop()
    }
}

/// Reads HTTP responses off a raw connection: up to the end of each response (by
/// Content-Length), or everything until the server closes.
final class ResponseReader: @unchecked Sendable {
    private var iterator: AsyncStream<ByteBuffer>.AsyncIterator
    private var pending = ""

    init(_ connection: RawConnection) {
        iterator = connection.received.makeAsyncIterator()
    }

    /// The next response, head and body.
    func response() async throws -> String {
        while true {
            if let end = pending.range(of: "\r\n\r\n") {
                let head = String(pending[..<end.upperBound])
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                let bodyStart = end.upperBound
                if pending.utf8.distance(from: bodyStart, to: pending.endIndex) >= length {
                    let bodyEnd = pending.utf8.index(bodyStart, offsetBy: length)
                    defer { pending = String(pending[bodyEnd...]) }
                    return String(pending[..<bodyEnd])
                }
            }
            guard let chunk = await iterator.next() else { throw ChannelError.eof }
            pending += String(buffer: chunk)
        }
    }

    /// Whatever arrives next (what was read ahead first).
    func next() async throws -> String {
        if !pending.isEmpty {
            defer { pending = "" }
            return pending
        }
        guard let chunk = await iterator.next() else { throw ChannelError.eof }
        return String(buffer: chunk)
    }

    /// What arrives until the server closes the connection (after the responses read so far).
    func untilClosed() async -> String {
        while let chunk = await iterator.next() { pending += String(buffer: chunk) }
        defer { pending = "" }
        return pending
    }
}

/// Counts connections whose first bytes are a 503.
private final class FirstBytes: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let counter: RefusalCounter
    private var counted = false

    init(counter: RefusalCounter) {
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !counted else { return }
        counted = true
        if String(buffer: unwrapInboundIn(data)).hasPrefix("HTTP/1.1 503") { counter.add() }
    }
}

private final class RefusalCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    private var waiters: [(Int, CheckedContinuation<Void, Never>)] = []

    var count: Int { lock.withLock { value } }

    func add() {
        let ready = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            value += 1
            let (met, rest) = waiters.reduce(into: ([CheckedContinuation<Void, Never>](), [(Int, CheckedContinuation<Void, Never>)]())) {
                if value >= $1.0 { $0.0.append($1.1) } else { $0.1.append($1) }
            }
            waiters = rest
            return met
        }
        ready.forEach { $0.resume() }
    }

    /// Suspends until `target` refusals were counted (the suite's time limit bounds the wait).
    func wait(for target: Int) async {
        await withCheckedContinuation { continuation in
            let done = lock.withLock {
                if value >= target { return true }
                waiters.append((target, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }
}
