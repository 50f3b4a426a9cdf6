import NIOCore
import NIOEmbedded
import OpenSSLTLS
import TestSupport
import Testing

/// Counts `read()` requests that reach the socket side of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private(set) var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Collects plaintext delivered to the application.
final class PlaintextCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private(set) var bytes = 0
    private(set) var handshakeDone = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { handshakeDone = true }
    }
}

@Suite(.timeLimit(.minutes(3))) struct OpenSSLBackpressureTests {
    /// Moves every pending byte between the two channels until both are quiet.
    func shuttle(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        var moved = true
        while moved {
            moved = false
            while let bytes = try a.readOutbound(as: ByteBuffer.self) {
                try b.writeInbound(bytes)
                moved = true
            }
            while let bytes = try b.readOutbound(as: ByteBuffer.self) {
                try a.writeInbound(bytes)
                moved = true
            }
        }
    }

    @Test func afterTheHandshakeOnlyTheApplicationAsksForReads() throws {
        let certificates = TestCertificates.shared
        let server = EmbeddedChannel()
        let client = EmbeddedChannel()
        let counter = ReadCounter()
        let collector = PlaintextCollector()
        try server.pipeline.syncOperations.addHandler(OpenSSLHandler(context: try OpenSSLContext.server(
            certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)))
        try client.pipeline.syncOperations.addHandler(counter)
        try client.pipeline.syncOperations.addHandler(OpenSSLHandler(
            context: try OpenSSLContext.client(TLSClientConfiguration(caFilePath: certificates.caFile)), serverName: "localhost"))
        try client.pipeline.syncOperations.addHandler(collector)
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try shuttle(client, server)
        #expect(collector.handshakeDone)
        let readsDuringHandshake = counter.reads
        #expect(readsDuringHandshake > 0, "the handshake reads on its own")

        var payload = ByteBuffer()
        payload.writeRepeatingByte(7, count: 256 * 1024)
        try server.writeAndFlush(payload).wait()
        try shuttle(client, server)
        #expect(collector.bytes == 256 * 1024)
        #expect(counter.reads == readsDuringHandshake, "no read() of its own once the handshake is done")
        client.read()
        #expect(counter.reads == readsDuringHandshake + 1, "the application's read() passes through once")
        _ = try? client.finish()
        _ = try? server.finish()
    }
}
