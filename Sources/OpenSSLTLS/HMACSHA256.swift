import COpenSSL

/// HMAC-SHA-256 (RFC 2104) from the system OpenSSL: signs the ChatGPT-mode tokens codexpool
/// gives Codex CLIs, keyed by the user's own token.
public enum HMACSHA256 {
    public static let length = 32

    public static func authenticationCode(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var code = [UInt8](repeating: 0, count: length)
        var written: UInt32 = 0
        // An empty key is still a key for HMAC; OpenSSL wants a non-null pointer for it.
        let keyBytes = key.isEmpty ? [0] : key
        _ = keyBytes.withUnsafeBufferPointer { keyBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                HMAC(EVP_sha256(), keyBuffer.baseAddress, Int32(key.count), messageBuffer.baseAddress, messageBuffer.count, &code, &written)
            }
        }
        return code
    }
}
