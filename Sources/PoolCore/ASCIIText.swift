/// Byte-level helpers for header names, which are ASCII tokens: the gateway reads every header
/// of every response, and `lowercased()`/`hasSuffix(_:)` work on Unicode characters and copy.
extension String {
    /// ASCII letters in lower case; the string itself, uncopied, when it has no upper-case
    /// ASCII letter (header names almost always arrive that way).
    public var asciiLowercased: String {
        let isUpper = { (byte: UInt8) in byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
        let hasUpper = utf8.withContiguousStorageIfAvailable { $0.contains(where: isUpper) } ?? utf8.contains(where: isUpper)
        guard hasUpper else { return self }
        return String(decoding: utf8.map { isUpper($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Whether the UTF-8 bytes begin with `prefix`'s.
    public func bytesHavePrefix(_ prefix: String) -> Bool {
        bytesMatch(prefix, atEnd: false)
    }

    /// Whether the UTF-8 bytes end with `suffix`'s.
    public func bytesHaveSuffix(_ suffix: String) -> Bool {
        bytesMatch(suffix, atEnd: true)
    }

    private func bytesMatch(_ part: String, atEnd: Bool) -> Bool {
        let count = utf8.count, partCount = part.utf8.count
        guard partCount <= count else { return false }
        let matched = utf8.withContiguousStorageIfAvailable { whole in
            part.utf8.withContiguousStorageIfAvailable { part in
                let start = atEnd ? count - partCount : 0
                return UnsafeBufferPointer(rebasing: whole[start..<(start + partCount)]).elementsEqual(part)
            }
        }
        if let matched, let matched { return matched }
        return atEnd ? utf8.suffix(partCount).elementsEqual(part.utf8) : utf8.prefix(partCount).elementsEqual(part.utf8)
    }
}
