#if canImport(Glibc)
import Glibc
#endif

/// A member name as `JSONFieldScanner.object` reads it: the bytes between its quotes, compared
/// where they lie. Most members of a large event are skipped after one look at their name, and
/// a string made for each name cost more than the skipping.
public struct JSONKey {
    /// The name's bytes, escapes and all.
    let raw: UnsafeRawBufferPointer
    /// The name decoded, for the rare name written with escapes.
    private let decoded: String?

    /// nil for a name whose escapes are malformed.
    init?(raw: UnsafeRawBufferPointer) {
        self.raw = raw
        if raw.contains(UInt8(ascii: "\\")) {
            guard let decoded = JSONFieldScanner.unescaped(raw) else { return nil }
            self.decoded = decoded
        } else {
            decoded = nil
        }
    }

    /// Whether the name is `name`; lets a `switch` over a key use string literals as patterns.
    public static func ~= (name: StaticString, key: JSONKey) -> Bool {
        key == name
    }

    public static func == (key: JSONKey, name: StaticString) -> Bool {
        let expected = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        if let decoded = key.decoded { return decoded.utf8.elementsEqual(expected) }
        // Length first, then memcmp: a key is compared with every name a switch lists.
        return key.raw.count == expected.count && (expected.isEmpty || memcmp(key.raw.baseAddress!, expected.baseAddress!, expected.count) == 0)
    }

    public static func != (key: JSONKey, name: StaticString) -> Bool {
        !(key == name)
    }

    /// The name as a string.
    public var string: String {
        decoded ?? String(decoding: raw, as: UTF8.self)
    }
}
