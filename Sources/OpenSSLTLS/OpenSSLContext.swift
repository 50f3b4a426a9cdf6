import COpenSSL
public import Foundation

/// How a client checks the server it connects to.
public struct TLSClientConfiguration: Hashable, Sendable {
    /// A PEM file of trusted CAs; nil means the system store.
    public var caFilePath: String?
    /// SHA-256 digests of accepted server public keys (DER SubjectPublicKeyInfo). When set, a
    /// matching key is what makes the server trusted — CA and name checks are not needed, which
    /// is what a tunnel to one's own VPS with a self-signed certificate wants.
    public var pinnedPublicKeySHA256: [[UInt8]]
    /// Skip every check. Only by explicit configuration; the caller logs a warning.
    public var insecureSkipVerification: Bool
    /// Offered through ALPN, in preference order; empty offers nothing.
    public var applicationProtocols: [String]

    public init(caFilePath: String? = nil, pinnedPublicKeySHA256: [[UInt8]] = [], insecureSkipVerification: Bool = false,
                applicationProtocols: [String] = ["http/1.1"]) {
        self.caFilePath = caFilePath
        self.pinnedPublicKeySHA256 = pinnedPublicKeySHA256
        self.insecureSkipVerification = insecureSkipVerification
        self.applicationProtocols = applicationProtocols
    }
}

/// A configured OpenSSL `SSL_CTX`, shared by all connections of one kind.
///
/// An `SSL_CTX` is safe to use from many threads once configured, and nothing changes it after
/// the factory returns, hence `@unchecked Sendable`.
public final class OpenSSLContext: @unchecked Sendable {
    let pointer: OpaquePointer
    let isServer: Bool
    let client: TLSClientConfiguration?

    private init(pointer: OpaquePointer, isServer: Bool, client: TLSClientConfiguration?) {
        self.pointer = pointer
        self.isServer = isServer
        self.client = client
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// A server context from a PEM certificate chain (leaf first) and its private key.
    public static func server(certificateChainFile: String, privateKeyFile: String) throws(OpenSSLTLSError) -> OpenSSLContext {
        let context = try makeContext(method: TLS_server_method(), isServer: true, client: nil)
        guard SSL_CTX_use_certificate_chain_file(context.pointer, certificateChainFile) == 1 else {
            throw OpenSSLTLSError(.configuration, "cannot load the certificate chain \(certificateChainFile): \(OpenSSLTLSError.drainErrorQueue())")
        }
        guard SSL_CTX_use_PrivateKey_file(context.pointer, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            if ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH {
                ERR_clear_error()
                throw OpenSSLTLSError(.configuration, "the private key \(privateKeyFile) does not belong to the certificate \(certificateChainFile)")
            }
            throw OpenSSLTLSError(.configuration, "cannot load the private key \(privateKeyFile): \(OpenSSLTLSError.drainErrorQueue())")
        }
        guard SSL_CTX_check_private_key(context.pointer) == 1 else {
            throw OpenSSLTLSError(.configuration, "the private key \(privateKeyFile) does not belong to the certificate \(certificateChainFile)")
        }
        codexpool_SSL_CTX_select_http11(context.pointer)
        return context
    }

    public static func client(_ configuration: TLSClientConfiguration = TLSClientConfiguration()) throws(OpenSSLTLSError) -> OpenSSLContext {
        let context = try makeContext(method: TLS_client_method(), isServer: false, client: configuration)
        let verifiesChain = !configuration.insecureSkipVerification && configuration.pinnedPublicKeySHA256.isEmpty
        SSL_CTX_set_verify(context.pointer, verifiesChain ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        // A configured CA file must load even where pins decide: a broken file is never ignored.
        if let caFile = configuration.caFilePath {
            guard SSL_CTX_load_verify_locations(context.pointer, caFile, nil) == 1 else {
                throw OpenSSLTLSError(.configuration, "cannot load the CA file \(caFile): \(OpenSSLTLSError.drainErrorQueue())")
            }
        }
        if verifiesChain, configuration.caFilePath == nil, SSL_CTX_set_default_verify_paths(context.pointer) != 1 {
            throw OpenSSLTLSError(.configuration, "cannot load the system CA store: \(OpenSSLTLSError.drainErrorQueue())")
        }
        if !configuration.applicationProtocols.isEmpty {
            var wire: [UInt8] = []
            for name in configuration.applicationProtocols where !name.isEmpty && name.utf8.count < 256 {
                wire.append(UInt8(name.utf8.count))
                wire.append(contentsOf: name.utf8)
            }
            // Returns 0 on success (unlike most of OpenSSL).
            guard SSL_CTX_set_alpn_protos(context.pointer, wire, UInt32(wire.count)) == 0 else {
                throw OpenSSLTLSError(.configuration, "cannot set ALPN protocols: \(OpenSSLTLSError.drainErrorQueue())")
            }
        }
        return context
    }

    /// When the server certificate (the chain's leaf) expires; nil for a client context.
    public var certificateExpiry: Date? {
        guard let certificate = SSL_CTX_get0_certificate(pointer), let notAfter = X509_get0_notAfter(certificate) else { return nil }
        var time = tm()
        guard ASN1_TIME_to_tm(notAfter, &time) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&time)))
    }

    private static func makeContext(method: OpaquePointer?, isServer: Bool, client: TLSClientConfiguration?) throws(OpenSSLTLSError) -> OpenSSLContext {
        guard let pointer = SSL_CTX_new(method) else {
            throw OpenSSLTLSError(.configuration, "cannot create an OpenSSL context: \(OpenSSLTLSError.drainErrorQueue())")
        }
        let context = OpenSSLContext(pointer: pointer, isServer: isServer, client: client)
        guard codexpool_SSL_CTX_set_min_proto_version(pointer, TLS1_2_VERSION) == 1 else {
            throw OpenSSLTLSError(.configuration, "cannot require TLS 1.2: \(OpenSSLTLSError.drainErrorQueue())")
        }
        // Renegotiation and TLS compression are attack surface with no use here.
        SSL_CTX_set_options(pointer, codexpool_SSL_OP_NO_RENEGOTIATION() | codexpool_SSL_OP_NO_COMPRESSION())
        // Idle connections (thousands of WebSockets) should not each keep 34 KiB of buffers.
        _ = codexpool_SSL_CTX_set_mode(pointer, codexpool_SSL_MODE_RELEASE_BUFFERS())
        return context
    }
}
