import COpenSSL

/// What went wrong in TLS, in words that say what to fix. Never contains key material.
public struct OpenSSLTLSError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Certificates, keys or CA files could not be loaded.
        case configuration
        case certificateExpired
        case certificateNotYetValid
        case nameMismatch
        case untrustedCertificate
        case otherVerificationFailure
        case pinMismatch
        case handshakeFailed
        case handshakeTimeout
        /// The connection ended without close_notify, so the data may have been cut short.
        case uncleanShutdown
        case protocolError
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "TLS: \(message)" }

    /// The OpenSSL error queue as text, emptied.
    static func drainErrorQueue() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "no details from OpenSSL" : messages.joined(separator: "; ")
    }

    /// A certificate verification failure, from `SSL_get_verify_result`.
    static func verification(_ code: Int, serverName: String?) -> OpenSSLTLSError {
        let detail = String(cString: X509_verify_cert_error_string(code))
        let name = serverName.map { " \($0)" } ?? ""
        switch Int32(code) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return OpenSSLTLSError(.certificateExpired, "the server\(name)'s certificate has expired (\(detail))")
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return OpenSSLTLSError(.certificateNotYetValid, "the server\(name)'s certificate is not valid yet; check the clocks (\(detail))")
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            return OpenSSLTLSError(.nameMismatch, "the server's certificate is not valid for\(name) (\(detail)); set tls.server_name if it is issued for another name")
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
             X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return OpenSSLTLSError(.untrustedCertificate,
                                   "the server\(name)'s certificate is not issued by a trusted CA (\(detail)); set tls.ca to its CA file or pin its key with tls.pin_sha256")
        default:
            return OpenSSLTLSError(.otherVerificationFailure, "the server\(name)'s certificate was rejected (\(detail))")
        }
    }
}
