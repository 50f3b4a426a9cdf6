/// Header names to look up by their bytes, in any case: a proxy classifies every header of
/// every answer, and lowering a name into a new string to hash it costs more than comparing a
/// few names of the same length.
package struct HTTPHeaderNameSet: Sendable {
    /// The names in lower case, by their length (the index).
    private var byLength: [[[UInt8]]]

    package init(_ names: some Sequence<String>) {
        let lowered = names.map { name in Array(name.utf8).map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 } }
        byLength = Array(repeating: [], count: (lowered.map(\.count).max() ?? 0) + 1)
        for name in lowered { byLength[name.count].append(name) }
    }

    package func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        guard name.count < byLength.count else { return false }
        return byLength[name.count].contains { candidate in candidate.withUnsafeBytes { HTTPToken.name(name, is: $0) } }
    }

    package func contains(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { contains(UnsafeRawBufferPointer($0)) }
    }

    /// Whether `name` ends with one of the names.
    package func containsSuffix(of name: UnsafeRawBufferPointer) -> Bool {
        // Only names no longer than `name` can end it.
        byLength.prefix(name.count + 1).contains { names in
            names.contains { suffix in suffix.withUnsafeBytes { HTTPToken.name(name, hasSuffix: $0) } }
        }
    }
}
