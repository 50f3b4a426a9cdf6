import COpenSSL

/// A throwaway certificate and key made on the spot, for `codexpool demo` and similar
/// loopback set-ups; a real deployment uses certificates from a CA.
public struct SelfSignedCertificate: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    /// SHA-256 of the DER SubjectPublicKeyInfo: what a connector's `pin_sha256` names.
    public var publicKeySHA256: [UInt8]

    /// - Parameter alternativeNames: subjectAltName entries, e.g. `["DNS:localhost", "IP:127.0.0.1"]`.
    public static func generate(commonName: String, alternativeNames: [String], days: Int = 30) throws(OpenSSLTLSError) -> SelfSignedCertificate {
        guard let certificateBIO = BIO_new(BIO_s_mem()), let keyBIO = BIO_new(BIO_s_mem()) else {
            throw OpenSSLTLSError(.configuration, "cannot allocate memory for a certificate")
        }
        defer {
            BIO_free(certificateBIO)
            BIO_free(keyBIO)
        }
        var digest = [UInt8](repeating: 0, count: 32)
        let made = codexpool_make_self_signed(commonName, alternativeNames.joined(separator: ","), days, certificateBIO, keyBIO, &digest)
        guard made == 1 else {
            throw OpenSSLTLSError(.configuration, "cannot make a self-signed certificate: \(OpenSSLTLSError.drainErrorQueue())")
        }
        return SelfSignedCertificate(certificatePEM: drain(certificateBIO), privateKeyPEM: drain(keyBIO), publicKeySHA256: digest)
    }

    private static func drain(_ bio: OpaquePointer) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = BIO_read(bio, &chunk, Int32(chunk.count))
            if count <= 0 { break }
            bytes += chunk[0..<Int(count)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
