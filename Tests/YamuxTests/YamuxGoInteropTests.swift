import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import TestSupport
import Testing
import Yamux

/// Answers the peer's stream protocol: 8-byte length, payload → 8-byte FNV-1a 64, then FIN.
final class ChecksumResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var received = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.writeBuffer(&buffer)
        guard let length = received.getInteger(at: received.readerIndex, as: UInt64.self),
              received.readableBytes >= 8 + Int(length) else { return }
        let payload = received.getSlice(at: received.readerIndex + 8, length: Int(length))!
        var answer = ByteBuffer()
        answer.writeInteger(fnv1a64(payload.readableBytesView))
        received.moveReaderIndex(forwardBy: 8 + Int(length))
        context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
        context.close(mode: .output, promise: nil)
    }
}

@Suite(.timeLimit(.minutes(3))) struct YamuxGoInteropTests {
    enum Transport: String, CaseIterable, Sendable { case tcp, tls }

    /// Our client (odd stream ids) against the Go server: 100 concurrent streams with checksums,
    /// half of them half-closed by us first, half closed by Go first, and one reset by us.
    @Test(arguments: Transport.allCases)
    func ourClientAgainstGoServer(transport: Transport) async throws {
        let certificates = TestCertificates.shared
        let tlsArguments = transport == .tls ? ["-tls", "\(certificates.serverCertificate),\(certificates.serverKey)"] : []
        let peer = ChildProcess(try GoYamuxPeer.executable(), ["-role", "server"] + tlsArguments, mergeOutput: true)
        try peer.start()
        await peer.waitForStandardError(containing: "LISTENING ")
        let port = try #require(peer.standardError.split(separator: "\n").first { $0.hasPrefix("LISTENING ") }
            .flatMap { Int($0.dropFirst("LISTENING ".count)) })

        let clientTLS = transport == .tls ? try OpenSSLContext.client(TLSClientConfiguration(caFilePath: certificates.caFile)) : nil
        let sessions = Shared<[NIOLoopBound<YamuxSessionHandler>]>([])
        let connection = try await ClientBootstrap(group: yamuxGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let clientTLS { try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: clientTLS, serverName: "localhost")) }
                    let session = YamuxSessionHandler(role: .client, inboundStreamInitializer: nil)
                    try channel.pipeline.syncOperations.addHandler(session)
                    sessions.update { $0.append(NIOLoopBound(session, eventLoop: channel.eventLoop)) }
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let session = sessions.value[0]

        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<100 {
                group.addTask {
                    let stream = try await session.openCollectingStream()
                    var payload = pattern(stream: index, count: 20_000 + index * 997)
                    let finFirst = index % 2 == 0
                    // The last byte tells the peer whether our FIN follows the payload.
                    payload.setInteger(UInt8(ascii: finFirst ? "F" : "N"), at: payload.writerIndex - 1)
                    var message = ByteBuffer()
                    message.writeInteger(UInt64(payload.readableBytes))
                    message.writeImmutableBuffer(payload)
                    try await stream.channel.writeAndFlush(message).get()
                    if finFirst { try await stream.channel.close(mode: .output).get() }
                    let answer = try await stream.collector.await { $0.bytes(8) }
                    if !finFirst {
                        // Go answers and closes first; we see its FIN, then close our side.
                        try await stream.collector.await { $0.inputEnded.futureResult }
                        let halfClosed = try await stream.collector.read { $0.sawInputClosed }
                        try await stream.channel.close(mode: .output).get()
                        guard halfClosed else { return false }
                    }
                    try await stream.collector.await { $0.closed.futureResult }
                    return answer.getInteger(at: answer.readerIndex, as: UInt64.self) == fnv1a64(payload.readableBytesView)
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 100)

        // One stream reset by us in the middle of its payload.
        let reset = try await session.openCollectingStream()
        var partial = ByteBuffer()
        partial.writeInteger(UInt64(1_000_000))
        partial.writeBytes([UInt8](repeating: 7, count: 1000))
        try await reset.channel.writeAndFlush(partial).get()
        try await reset.channel.triggerUserOutboundEvent(YamuxStreamResetEvent()).get()
        // A round trip on a fresh stream orders the RST before the session ends.
        let probe = try await session.openCollectingStream()
        var probeMessage = ByteBuffer()
        probeMessage.writeInteger(UInt64(1))
        probeMessage.writeInteger(UInt8(1))
        try await probe.channel.writeAndFlush(probeMessage).get()
        _ = try await probe.collector.await { $0.bytes(8) }
        // The peer counts the probe once its answer's write returns, and closes the stream after:
        // its FIN, not the answer, says the count is in.
        try await probe.collector.await { $0.inputEnded.futureResult }

        try await connection.close().get()
        #expect(await peer.exitStatus() == 0)
        #expect(summaryValues(peer.standardError) == ["streams": 102, "ok": 101, "fin_first": 50, "resets": 1], "\(peer.standardError)")
    }

    /// The Go client opens streams (even ids on our side are theirs: they are the client) to our server.
    @Test(arguments: Transport.allCases)
    func goClientAgainstOurServer(transport: Transport) async throws {
        let certificates = TestCertificates.shared
        let serverTLS = transport == .tls
            ? try OpenSSLContext.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey) : nil
        let listener = try await ServerBootstrap(group: yamuxGroup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let serverTLS { try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: serverTLS)) }
                    try channel.pipeline.syncOperations.addHandler(YamuxSessionHandler(role: .server, inboundStreamInitializer: { stream in
                        stream.setOption(.allowRemoteHalfClosure, value: true).flatMap {
                            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(ChecksumResponder()) }
                        }
                    }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let tlsArguments = transport == .tls ? ["-tls-ca", certificates.caFile] : []
        let peer = ChildProcess(try GoYamuxPeer.executable(), [
            "-role", "client", "-addr", "127.0.0.1:\(listener.localAddress!.port!)", "-streams", "100", "-size", "100000",
        ] + tlsArguments, mergeOutput: true)
        try peer.start()
        #expect(await peer.exitStatus() == 0, "\(peer.standardError)")
        #expect(summaryValues(peer.standardError) == ["streams": 100, "ok": 100], "\(peer.standardError)")
    }

    /// The Go side resets streams its full accept backlog cannot take.
    @Test func resetFromTheGoSide() async throws {
        let peer = ChildProcess(try GoYamuxPeer.executable(), ["-role", "server", "-backlog", "1", "-noaccept"], mergeOutput: true)
        try peer.start()
        defer { peer.process.terminate() }
        await peer.waitForStandardError(containing: "LISTENING ")
        let port = try #require(peer.standardError.split(separator: "\n").first { $0.hasPrefix("LISTENING ") }
            .flatMap { Int($0.dropFirst("LISTENING ".count)) })
        let sessions = Shared<[NIOLoopBound<YamuxSessionHandler>]>([])
        let connection = try await ClientBootstrap(group: yamuxGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = YamuxSessionHandler(role: .client, inboundStreamInitializer: nil)
                    try channel.pipeline.syncOperations.addHandler(session)
                    sessions.update { $0.append(NIOLoopBound(session, eventLoop: channel.eventLoop)) }
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let kept = try await sessions.value[0].openCollectingStream()
        try await kept.channel.writeAndFlush(ByteBuffer(string: "waits in the backlog")).get()
        let refused = try await sessions.value[0].openCollectingStream()
        // The RST may arrive before this write is done with; either way the stream ends.
        try? await refused.channel.writeAndFlush(ByteBuffer(string: "refused")).get()
        try await refused.collector.await { $0.closed.futureResult }
        #expect(try await refused.collector.read { $0.errors.map { "\($0)" } } == ["the yamux stream was reset by the peer"])
        try await connection.close().get()
    }
}
