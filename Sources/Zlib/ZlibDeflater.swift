import CZlib

/// Raw deflate for permessage-deflate (RFC 7692): each message is compressed with a sync
/// flush and the trailing `00 00 ff ff` removed.
package final class ZlibDeflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// Reset after every message (the peer asked for no context takeover).
    private let resetsPerMessage: Bool

    /// - Parameter windowBits: 9…15; zlib's raw deflate cannot produce an 8-bit window.
    package init(windowBits: Int, resetsPerMessage: Bool) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        _ = codexpool_deflateInit2(stream, Z_DEFAULT_COMPRESSION, -Int32(min(15, max(9, windowBits))), 8)
        self.resetsPerMessage = resetsPerMessage
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    package func compressMessage(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(1024, input.count / 2 + 64))
        var input = input
        input.withUnsafeMutableBufferPointer { inputBytes in
            stream.pointee.next_in = inputBytes.baseAddress
            stream.pointee.avail_in = UInt32(inputBytes.count)
            repeat {
                let produced = chunk.withUnsafeMutableBufferPointer { chunkBytes -> Int in
                    stream.pointee.next_out = chunkBytes.baseAddress
                    stream.pointee.avail_out = UInt32(chunkBytes.count)
                    _ = deflate(stream, Z_SYNC_FLUSH)
                    return chunkBytes.count - Int(stream.pointee.avail_out)
                }
                output += chunk[0..<produced]
            } while stream.pointee.avail_out == 0
            stream.pointee.next_in = nil
        }
        if output.count >= 4, output.suffix(4) == [0x00, 0x00, 0xff, 0xff] { output.removeLast(4) }
        if resetsPerMessage { deflateReset(stream) }
        return output
    }
}
