package import NIOCore
package import NIOHTTP1

extension ByteBuffer {
    /// Writes `name: value` lines with one capacity check and plain copies: ByteBuffer's
    /// per-string writes cost more than the copying itself when a head has two dozen headers.
    /// Headers for which `omitting` is true are left out. Not generic: the callers are in other
    /// modules, where a generic would run unspecialised at several times the cost.
    package mutating func writeHeaderLines(_ fields: HTTPHeaders, omitting: ((String) -> Bool)? = nil) {
        var total = 0
        for (name, value) in fields where omitting?(name) != true { total += name.utf8.count + value.utf8.count + 4 }
        guard total > 0 else { return }
        writeWithUnsafeMutableBytes(minimumWritableBytes: total) { output in
            var offset = 0
            for (name, value) in fields where omitting?(name) != true {
                offset = Self.copy(name, into: output, at: offset)
                output[offset] = UInt8(ascii: ":")
                output[offset + 1] = UInt8(ascii: " ")
                offset = Self.copy(value, into: output, at: offset + 2)
                output[offset] = 0x0D
                output[offset + 1] = 0x0A
                offset += 2
            }
            return offset
        }
    }

    private static func copy(_ text: String, into output: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let utf8 = text.utf8
        let copied = utf8.withContiguousStorageIfAvailable { bytes -> Int in
            if let base = bytes.baseAddress, bytes.count > 0 {
                (output.baseAddress! + offset).copyMemory(from: base, byteCount: bytes.count)
            }
            return bytes.count
        }
        if let copied { return offset + copied }
        var position = offset
        for byte in utf8 {
            output[position] = byte
            position += 1
        }
        return position
    }
}
