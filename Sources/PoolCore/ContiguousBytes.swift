extension Collection<UInt8> {
    /// The bytes as one raw buffer: in place when they are contiguous (arrays, `Data`, byte
    /// buffer views), copied once when not. For the byte scanners, which need a buffer.
    public func withContiguousBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let result = try withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) { return result }
        return try Array(self).withUnsafeBytes(body)
    }
}
