/// A byte-level helper for header names, which are ASCII tokens: `lowercased()` works on Unicode
/// characters and always copies.
extension String {
    /// ASCII letters in lower case; the string itself, uncopied, when it has no upper-case
    /// ASCII letter (header names almost always arrive that way).
    public var asciiLowercased: String {
        let isUpper = { (byte: UInt8) in byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
        let hasUpper = utf8.withContiguousStorageIfAvailable { $0.contains(where: isUpper) } ?? utf8.contains(where: isUpper)
        guard hasUpper else { return self }
        return String(decoding: utf8.map { isUpper($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
