import COpenSSL
public import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fired inbound once the handshake has succeeded.
public struct TLSHandshakeCompleted: Hashable, Sendable {
    /// The ALPN protocol both sides agreed on, if any.
    public var negotiatedProtocol: String?
}

/// TLS over a NIO channel, driven by the system OpenSSL through two memory BIOs.
///
/// Ciphertext from the network goes into the read BIO and comes out of `SSL_read` as plaintext;
/// plaintext writes go through `SSL_write` and the write BIO's contents are written to the
/// network. The handler never reads from the network on its own initiative once the handshake
/// is done: `read()` from the pipeline is passed through, so backpressure reaches the socket.
public final class OpenSSLHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case handshaking
        case active
        /// close_notify sent; the channel closes once it is written.
        case closing
        case closed
    }

    private let tlsContext: OpenSSLContext
    private let serverName: String?
    private let handshakeTimeout: TimeAmount
    private var ssl: OpaquePointer?
    private var readBIO: OpaquePointer?
    private var writeBIO: OpaquePointer?
    private var state = State.idle
    private var bufferedWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushRequested = false
    private var handshakeTimer: Scheduled<Void>?
    private var receivedCloseNotify = false
    /// Plaintext chunk size per `SSL_read`; one TLS record holds at most 16 KiB.
    private static let readChunk = 16 * 1024

    /// - Parameters:
    ///   - serverName: for clients, the name sent as SNI and checked against the certificate
    ///     (an IP address is checked but not sent); ignored for servers.
    public init(context: OpenSSLContext, serverName: String? = nil, handshakeTimeout: TimeAmount = .seconds(10)) {
        self.tlsContext = context
        self.serverName = serverName
        self.handshakeTimeout = handshakeTimeout
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        do {
            try createSSL()
        } catch {
            state = .closed
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if context.channel.isActive { startHandshake(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        failBufferedWrites(ChannelError.ioOnClosedChannel)
        if let ssl { SSL_free(ssl) }  // frees both BIOs, which SSL_set_bio gave it
        ssl = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        switch state {
        case .handshaking:
            context.fireErrorCaught(OpenSSLTLSError(.handshakeFailed, "the connection closed during the handshake"))
        case .active where !receivedCloseNotify:
            context.fireErrorCaught(OpenSSLTLSError(.uncleanShutdown, "the connection closed without close_notify; data may be truncated"))
        default:
            break
        }
        state = .closed
        failBufferedWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    private func createSSL() throws(OpenSSLTLSError) {
        guard let ssl = SSL_new(tlsContext.pointer), let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            throw OpenSSLTLSError(.configuration, "cannot create a TLS session: \(OpenSSLTLSError.drainErrorQueue())")
        }
        // An empty read BIO means "wait for more bytes", not end of stream.
        _ = codexpool_BIO_set_mem_eof_return(readBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        if tlsContext.isServer {
            SSL_set_accept_state(ssl)
            return
        }
        SSL_set_connect_state(ssl)
        guard let serverName, !serverName.isEmpty else { return }
        if Self.isIPAddress(serverName) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1 else {
                throw OpenSSLTLSError(.configuration, "cannot verify against the address \(serverName)")
            }
        } else {
            guard codexpool_SSL_set_tlsext_host_name(ssl, serverName) == 1, SSL_set1_host(ssl, serverName) == 1 else {
                throw OpenSSLTLSError(.configuration, "cannot use the server name \(serverName): \(OpenSSLTLSError.drainErrorQueue())")
            }
        }
    }

    // MARK: Handshake

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state, ssl != nil else { return }
        state = .handshaking
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) { [weak self] in
            guard let self, case .handshaking = self.state else { return }
            self.fail(context: context, OpenSSLTLSError(.handshakeTimeout, "the handshake did not finish within \(self.handshakeTimeout)"))
        }
        advanceHandshake(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        guard let ssl else { return }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        writeOutput(context: context, promise: nil)
        context.flush()
        if result == 1 {
            completeHandshake(context: context)
            return
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            // The handshake needs the peer's next message, whatever the pipeline wants to read.
            context.read()
        default:
            fail(context: context, handshakeError())
        }
    }

    private func completeHandshake(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        if let pins = tlsContext.client?.pinnedPublicKeySHA256, !pins.isEmpty, !tlsContext.client!.insecureSkipVerification {
            guard let digest = peerPublicKeyDigest(), pins.contains(digest) else {
                fail(context: context, OpenSSLTLSError(
                    .pinMismatch, "the server's public key (sha256 \(peerPublicKeyDigest().map(Self.base64) ?? "unavailable")) matches none of the pinned keys"))
                return
            }
        }
        state = .active
        context.fireUserInboundEventTriggered(TLSHandshakeCompleted(negotiatedProtocol: negotiatedProtocol()))
        let writes = bufferedWrites
        bufferedWrites = []
        for (data, promise) in writes { encrypt(data, promise: promise, context: context) }
        if flushRequested || !writes.isEmpty {
            flushRequested = false
            context.flush()
        }
        // The peer's first application data may have arrived with its last handshake message.
        decryptAvailable(context: context)
    }

    private func handshakeError() -> OpenSSLTLSError {
        guard let ssl else { return OpenSSLTLSError(.handshakeFailed, "no TLS session") }
        let verifyResult = SSL_get_verify_result(ssl)
        if !tlsContext.isServer, verifyResult != X509_V_OK {
            ERR_clear_error()
            return OpenSSLTLSError.verification(verifyResult, serverName: serverName)
        }
        return OpenSSLTLSError(.handshakeFailed, "handshake failed: \(OpenSSLTLSError.drainErrorQueue())")
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard let readBIO else { return }
        while buffer.readableBytes > 0 {
            let written = buffer.withUnsafeReadableBytes { bytes in
                BIO_write(readBIO, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
            }
            guard written > 0 else {
                fail(context: context, OpenSSLTLSError(.protocolError, "cannot buffer received bytes: \(OpenSSLTLSError.drainErrorQueue())"))
                return
            }
            buffer.moveReaderIndex(forwardBy: Int(written))
        }
        switch state {
        case .handshaking: advanceHandshake(context: context)
        case .active, .closing: decryptAvailable(context: context)
        case .idle, .closed: break
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    /// Hands every complete record in the read BIO to the pipeline as plaintext.
    private func decryptAvailable(context: ChannelHandlerContext) {
        guard let ssl else { return }
        while true {
            var plaintext = context.channel.allocator.buffer(capacity: Self.readChunk)
            ERR_clear_error()
            let count = plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.readChunk) { bytes in
                Int(max(0, SSL_read(ssl, bytes.baseAddress, Int32(bytes.count))))
            }
            if count > 0 {
                if case .active = state { context.fireChannelRead(wrapInboundOut(plaintext)) }
                continue
            }
            let error = SSL_get_error(ssl, 0)
            switch error {
            case SSL_ERROR_WANT_READ:
                return
            case SSL_ERROR_ZERO_RETURN:
                receivedCloseNotify = true
                closeAfterPeerCloseNotify(context: context)
                return
            default:
                fail(context: context, OpenSSLTLSError(.protocolError, "cannot decrypt: \(OpenSSLTLSError.drainErrorQueue())"))
                return
            }
        }
    }

    /// The peer said close_notify: answer with ours and close, as both sides are done.
    private func closeAfterPeerCloseNotify(context: ChannelHandlerContext) {
        guard case .active = state, let ssl else { return }
        state = .closing
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        let written = context.eventLoop.makePromise(of: Void.self)
        writeOutput(context: context, promise: written)
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            bufferedWrites.append((buffer, promise))
        case .active:
            encrypt(buffer, promise: promise, context: context)
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .idle, .handshaking: flushRequested = true
        case .active, .closing: context.flush()
        case .closed: break
        }
    }

    public func read(context: ChannelHandlerContext) {
        context.read()
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (state, mode) {
        case (.active, .all), (.active, .output):
            // Say goodbye with close_notify so the peer can tell a clean end from a cut connection.
            state = mode == .all ? .closing : .active
            if let ssl {
                ERR_clear_error()
                _ = SSL_shutdown(ssl)
            }
            let written = context.eventLoop.makePromise(of: Void.self)
            writeOutput(context: context, promise: written)
            context.flush()
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: mode, promise: promise) }
        default:
            if mode == .all { state = .closed }
            context.close(mode: mode, promise: promise)
        }
    }

    private func encrypt(_ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        guard let ssl else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var remaining = plaintext
        while remaining.readableBytes > 0 {
            ERR_clear_error()
            let written = remaining.withUnsafeReadableBytes { bytes in
                SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, 1 << 30)))
            }
            guard written > 0 else {
                let error = OpenSSLTLSError(.protocolError, "cannot encrypt: \(OpenSSLTLSError.drainErrorQueue())")
                promise?.fail(error)
                fail(context: context, error)
                return
            }
            remaining.moveReaderIndex(forwardBy: Int(written))
        }
        writeOutput(context: context, promise: promise)
    }

    /// Moves whatever OpenSSL produced for the network into one write.
    private func writeOutput(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let writeBIO else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else {
            promise?.succeed()
            return
        }
        var ciphertext = context.channel.allocator.buffer(capacity: pending)
        ciphertext.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { bytes in
            Int(max(0, BIO_read(writeBIO, bytes.baseAddress, Int32(pending))))
        }
        context.write(wrapOutboundOut(ciphertext), promise: promise)
    }

    // MARK: Failure

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        if case .closed = state { return }
        state = .closed
        handshakeTimer?.cancel()
        failBufferedWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failBufferedWrites(_ error: any Error) {
        let writes = bufferedWrites
        bufferedWrites = []
        for (_, promise) in writes { promise?.fail(error) }
    }

    // MARK: Inspection

    private func negotiatedProtocol() -> String? {
        guard let ssl else { return nil }
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    private func peerPublicKeyDigest() -> [UInt8]? {
        guard let ssl, let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        var digest = [UInt8](repeating: 0, count: 32)
        return codexpool_spki_sha256(certificate, &digest) == 1 ? digest : nil
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var output = [UInt8](repeating: 0, count: (bytes.count + 2) / 3 * 4 + 1)
        let length = EVP_EncodeBlock(&output, bytes, Int32(bytes.count))
        return String(decoding: output.prefix(Int(max(0, length))), as: UTF8.self)
    }
}
