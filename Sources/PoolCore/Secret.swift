/// A bearer token or other secret that must never reach logs, errors or metrics.
///
/// Printing it (string interpolation, `dump`, test failure output) shows only a short
/// fingerprint, enough to tell two tokens apart in a log without revealing either.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself; read it only where it goes on the wire or is compared.
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    /// Eight hex digits of a 64-bit FNV-1a hash of the value.
    public var fingerprint: String {
        let hex = String(FNV1a.hash(value.utf8) >> 32, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    public var description: String { "secret#\(fingerprint)" }
    public var debugDescription: String { description }

    /// Compares in time that depends only on the lengths, not on where the first difference is,
    /// so a client cannot discover a user token byte by byte from response timing.
    public func constantTimeEquals(_ candidate: some StringProtocol) -> Bool {
        let expected = Array(value.utf8)
        let given = Array(candidate.utf8)
        // An empty secret matches nothing (and cannot be indexed below).
        guard !expected.isEmpty else { return false }
        // Any length difference makes it unequal: kept at full width (a UInt8 lost differences
        // that are multiples of 256, so a token repeating the secret matched).
        var difference = UInt(bitPattern: expected.count ^ given.count)
        for index in 0..<given.count {
            difference |= UInt(given[index] ^ expected[index % expected.count])
        }
        return difference == 0
    }
}

/// 64-bit FNV-1a: a fast, stable hash for telling values apart (never for security).
public enum FNV1a {
    public static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
