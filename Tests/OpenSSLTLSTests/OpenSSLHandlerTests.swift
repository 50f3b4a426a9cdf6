import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(1))) struct OpenSSLHandlerTests {
    let certificates = TestCertificates.shared

    func server(_ certificate: String? = nil, key: String? = nil) async throws -> (channel: any Channel, port: Int) {
        let context = try OpenSSLContext.server(certificateChainFile: certificate ?? certificates.serverCertificate,
                                                privateKeyFile: key ?? certificates.serverKey)
        return try await startEchoServer(context)
    }

    func trustingClient(_ configuration: TLSClientConfiguration? = nil) throws -> OpenSSLContext {
        try OpenSSLContext.client(configuration ?? TLSClientConfiguration(caFilePath: certificates.caFile))
    }

    @Test func handshakeAndEchoWithALPN() async throws {
        let server = try await server()
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port)
        let completed = try await client.recorder.await { $0.handshake.futureResult }
        #expect(completed.negotiatedProtocol == "http/1.1")
        try await client.channel.writeAndFlush(ByteBuffer(string: "hello over openssl")).get()
        let echoed = try await client.recorder.await { $0.bytes(18, on: $0.handshake.futureResult.eventLoop) }
        #expect(String(buffer: echoed) == "hello over openssl")
        try await client.channel.close().get()
    }

    @Test func ipAddressesAreVerifiedAgainstTheCertificate() async throws {
        let server = try await server()
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port, serverName: "127.0.0.1")
        _ = try await client.recorder.await { $0.handshake.futureResult }
        try await client.channel.close().get()
    }

    @Test func writesBeforeTheHandshakeAreSentAfterIt() async throws {
        let server = try await server()
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port)
        // Written immediately after connect, most likely before the handshake finished.
        try await client.channel.writeAndFlush(ByteBuffer(string: "early")).get()
        let echoed = try await client.recorder.await { $0.bytes(5, on: $0.handshake.futureResult.eventLoop) }
        #expect(String(buffer: echoed) == "early")
        try await client.channel.close().get()
    }

    @Test func wrongHostnameIsRejected() async throws {
        let server = try await server(certificates.otherNameCertificate, key: certificates.otherNameKey)
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port)
        await #expect(throws: (any Error).self) { try await client.recorder.await { $0.handshake.futureResult } }
        #expect(try await client.recorder.firstErrorKind() == .nameMismatch)
        let message = try await client.recorder.errors().first ?? ""
        #expect(message.contains("not valid for localhost"))
    }

    @Test func untrustedCAIsRejected() async throws {
        let server = try await server(certificates.untrustedCertificate, key: certificates.untrustedKey)
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port)
        await #expect(throws: (any Error).self) { try await client.recorder.await { $0.handshake.futureResult } }
        #expect(try await client.recorder.firstErrorKind() == .untrustedCertificate)
        #expect(try await client.recorder.errors().first?.contains("set tls.ca") == true)
    }

    @Test func systemStoreDoesNotTrustATestCA() async throws {
        let server = try await server()
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try OpenSSLContext.client(), port: server.port)
        await #expect(throws: (any Error).self) { try await client.recorder.await { $0.handshake.futureResult } }
        #expect(try await client.recorder.firstErrorKind() == .untrustedCertificate)
    }

    @Test func expiredCertificateIsRejected() async throws {
        let server = try await server(certificates.expiredCertificate, key: certificates.expiredKey)
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port)
        await #expect(throws: (any Error).self) { try await client.recorder.await { $0.handshake.futureResult } }
        #expect(try await client.recorder.firstErrorKind() == .certificateExpired)
    }

    /// A pin of the server's key trusts it without any CA — and rejects any other key.
    @Test func pinnedKeys() async throws {
        let server = try await server(certificates.untrustedCertificate, key: certificates.untrustedKey)
        defer { server.channel.close(promise: nil) }
        let rightPin = certificates.pin(of: certificates.untrustedCertificate)
        #expect(rightPin.count == 32)
        let pinned = try OpenSSLContext.client(TLSClientConfiguration(pinnedPublicKeySHA256: [rightPin]))
        let good = try await connectClient(pinned, port: server.port)
        _ = try await good.recorder.await { $0.handshake.futureResult }
        try await good.channel.close().get()

        let wrongPin = certificates.pin(of: certificates.serverCertificate)
        let mismatched = try OpenSSLContext.client(TLSClientConfiguration(pinnedPublicKeySHA256: [wrongPin]))
        let bad = try await connectClient(mismatched, port: server.port)
        await #expect(throws: (any Error).self) { try await bad.recorder.await { $0.handshake.futureResult } }
        #expect(try await bad.recorder.firstErrorKind() == .pinMismatch)
        let message = try await bad.recorder.errors().first ?? ""
        #expect(message.contains(Data(rightPin).base64EncodedString()), "the error shows the key's real pin: \(message)")
    }

    @Test func insecureSkipsEveryCheck() async throws {
        let server = try await server(certificates.expiredCertificate, key: certificates.expiredKey)
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try OpenSSLContext.client(TLSClientConfiguration(insecureSkipVerification: true)),
                                             port: server.port, serverName: "wrong.example")
        _ = try await client.recorder.await { $0.handshake.futureResult }
        try await client.channel.close().get()
    }

    @Test func largeTransfersAreByteExact() async throws {
        let server = try await server()
        defer { server.channel.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: server.port)
        _ = try await client.recorder.await { $0.handshake.futureResult }
        let total = 16 * 1024 * 1024
        var chunk = ByteBuffer()
        for index in 0..<(64 * 1024) { chunk.writeInteger(UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8)) }
        let expected = chunk
        for _ in 0..<(total / chunk.readableBytes) { client.channel.write(chunk, promise: nil) }
        client.channel.flush()
        let echoed = try await client.recorder.await { $0.bytes(total, on: $0.handshake.futureResult.eventLoop) }
        #expect(echoed.readableBytes == total)
        var view = echoed
        var mismatch = false
        while view.readableBytes > 0 {
            if view.readSlice(length: expected.readableBytes) != expected { mismatch = true }
        }
        #expect(!mismatch)
        try await client.channel.close().get()
    }

    /// Closing sends close_notify: the peer sees a clean end, not a truncation.
    @Test func closeNotifyInBothDirections() async throws {
        let serverSide = try OpenSSLContext.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)
        let recorders = Shared<[NIOLoopBound<RecordingHandler>]>([])
        let listener = try await ServerBootstrap(group: testGroup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let recorder = RecordingHandler(eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: serverSide))
                    try channel.pipeline.syncOperations.addHandler(recorder)
                    recorders.update { $0.append(NIOLoopBound(recorder, eventLoop: channel.eventLoop)) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }

        // Client closes: the server side ends cleanly.
        let first = try await connectClient(try trustingClient(), port: listener.localAddress!.port!)
        _ = try await first.recorder.await { $0.handshake.futureResult }
        try await first.channel.close().get()
        let serverOfFirst = try #require(recorders.value.first)
        try await serverOfFirst.await { $0.closed.futureResult }
        #expect(try await serverOfFirst.errors() == [])

        // Server closes: the client ends cleanly.
        let second = try await connectClient(try trustingClient(), port: listener.localAddress!.port!)
        _ = try await second.recorder.await { $0.handshake.futureResult }
        try await waitUntil("both sides recorded") { recorders.value.count >= 2 }
        let serverOfSecond = recorders.value[1]
        _ = try await serverOfSecond.await { $0.handshake.futureResult }
        try await serverOfSecond.await { recorder -> EventLoopFuture<Void> in
            recorder.channel?.close(promise: nil)
            return recorder.closed.futureResult
        }
        try await second.recorder.await { $0.closed.futureResult }
        #expect(try await second.recorder.errors() == [])
    }

    @Test func peerVanishingWithoutCloseNotifyIsReported() async throws {
        let rawServer = try await ServerBootstrap(group: testGroup)
            .childChannelInitializer { channel in
                let context = try! OpenSSLContext.server(certificateChainFile: TestCertificates.shared.serverCertificate,
                                                         privateKeyFile: TestCertificates.shared.serverKey)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BelowTLS())
                    try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(AbortAfterHandshake())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { rawServer.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: rawServer.localAddress!.port!)
        _ = try await client.recorder.await { $0.handshake.futureResult }
        try await client.recorder.await { $0.closed.futureResult }
        #expect(try await client.recorder.firstErrorKind() == .uncleanShutdown)
    }

    @Test func handshakeTimeout() async throws {
        // A TCP server that accepts and never speaks TLS.
        let silent = try await ServerBootstrap(group: testGroup).bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let client = try await connectClient(try trustingClient(), port: silent.localAddress!.port!, handshakeTimeout: .milliseconds(200))
        await #expect(throws: (any Error).self) { try await client.recorder.await { $0.handshake.futureResult } }
        #expect(try await client.recorder.firstErrorKind() == .handshakeTimeout)
    }

    @Test func badServerConfigurationsAreExplained() {
        #expect(throws: OpenSSLTLSError.self) {
            try OpenSSLContext.server(certificateChainFile: "/nonexistent.pem", privateKeyFile: TestCertificates.shared.serverKey)
        }
        do {
            _ = try OpenSSLContext.server(certificateChainFile: TestCertificates.shared.serverCertificate,
                                          privateKeyFile: TestCertificates.shared.otherNameKey)
            Issue.record("a mismatched key was accepted")
        } catch {
            #expect(error.description.contains("does not belong to the certificate"))
        }
        #expect(throws: OpenSSLTLSError.self) { try OpenSSLContext.client(TLSClientConfiguration(caFilePath: "/nonexistent-ca.pem")) }
    }
}

/// Sits between the socket and the TLS handler, so closes issued from here skip TLS.
final class BelowTLS: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
}

/// Closes the TCP connection right after the handshake, without close_notify.
final class AbortAfterHandshake: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is TLSHandshakeCompleted, let below = try? context.pipeline.syncOperations.context(handlerType: BelowTLS.self) else { return }
        below.close(promise: nil)
    }
}
