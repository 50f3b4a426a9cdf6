import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import TestSupport
import Testing

/// Our handler against the `openssl` command-line tools, in both roles.
@Suite(.timeLimit(.minutes(3))) struct OpenSSLInteropTests {
    let certificates = TestCertificates.shared
    static let openssl = URL(fileURLWithPath: "/usr/bin/openssl")

    @Test func ourClientAgainstOpenSSLServer() async throws {
        let server = ChildProcess(Self.openssl, [
            "s_server", "-accept", "127.0.0.1:0", "-cert", certificates.serverCertificate, "-key", certificates.serverKey,
            "-naccept", "1", "-rev",
        ], mergeOutput: true)
        try server.start()
        defer { server.process.terminate() }
        await server.waitForStandardError(containing: "ACCEPT 127.0.0.1:")
        let announced = server.standardError.split(separator: "\n").first { $0.hasPrefix("ACCEPT 127.0.0.1:") }
        let port = try #require(announced.flatMap { Int($0.split(separator: ":").last ?? "") })

        let client = try await connectClient(try OpenSSLContext.client(TLSClientConfiguration(caFilePath: certificates.caFile)), port: port)
        _ = try await client.recorder.await { $0.handshake.futureResult }
        try await client.channel.writeAndFlush(ByteBuffer(string: "hello\n")).get()
        let reply = try await client.recorder.await { $0.bytes(6, on: $0.handshake.futureResult.eventLoop) }
        #expect(String(buffer: reply) == "olleh\n")
        try await client.channel.close().get()
    }

    @Test(arguments: [["-tls1_3"], ["-tls1_2"]])
    func openSSLClientAgainstOurServer(versionFlags: [String]) async throws {
        let context = try OpenSSLContext.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)
        let listener = try await ServerBootstrap(group: testGroup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(EchoLineThenClose())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let client = ChildProcess(Self.openssl, [
            "s_client", "-connect", "127.0.0.1:\(listener.localAddress!.port!)", "-CAfile", certificates.caFile,
            "-servername", "localhost", "-verify_return_error", "-ign_eof", "-alpn", "h2,http/1.1",
        ] + versionFlags)
        try client.start()
        client.writeInput("ping over openssl\n")
        let status = await client.exitStatus()
        let output = client.remainingOutput()
        #expect(status == 0, "\(client.standardError)")
        #expect(output.contains("ping over openssl"))
        #expect(output.contains("Verify return code: 0 (ok)"))
        #expect(output.contains("ALPN protocol: http/1.1"), "h2 is never chosen")
        #expect(output.contains(versionFlags == ["-tls1_3"] ? "Protocol  : TLSv1.3" : "Protocol  : TLSv1.2") || output.contains(
            versionFlags == ["-tls1_3"] ? "New, TLSv1.3" : "New, TLSv1.2"))
    }

    @Test func versionsBelowTLS12AreRefused() async throws {
        let context = try OpenSSLContext.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)
        let listener = try await startEchoServer(context)
        defer { listener.channel.close(promise: nil) }
        let client = ChildProcess(Self.openssl, [
            "s_client", "-connect", "127.0.0.1:\(listener.port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-brief",
        ])
        try client.start()
        client.closeInput()
        #expect(await client.exitStatus() != 0)
    }
}

/// Echoes the first line, then closes the connection (with close_notify).
final class EchoLineThenClose: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var line = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        line.writeBuffer(&buffer)
        guard line.readableBytesView.contains(UInt8(ascii: "\n")) else { return }
        context.writeAndFlush(wrapOutboundOut(line), promise: nil)
        context.close(promise: nil)
    }
}
