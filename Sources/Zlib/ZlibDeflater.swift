import CZlib
package import NIOCore

/// Raw deflate for permessage-deflate (RFC 7692): each message is compressed with a sync
/// flush and the trailing `00 00 ff ff` removed.
package final class ZlibDeflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// Reset after every message (the peer asked for no context takeover).
    private let resetsPerMessage: Bool

    /// - Parameters:
    ///   - windowBits: 9…15; zlib's raw deflate cannot produce an 8-bit window.
    ///   - level: zlib's compression level, 1 (fastest) to 9.
    package init(windowBits: Int, resetsPerMessage: Bool, level: Int32) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        _ = codexpool_deflateInit2(stream, level, -Int32(min(15, max(9, windowBits))), 8)
        self.resetsPerMessage = resetsPerMessage
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// One message compressed, zlib writing straight into the buffer returned.
    package func compressMessage(_ message: ByteBuffer) -> ByteBuffer {
        // zlib makes nothing of a flush with no input right after another flush, and an empty
        // payload would leave the peer's inflater inside the stored block its tail then opens:
        // an empty message is that empty stored block's first byte (RFC 7692 §7.2.3.6).
        guard message.readableBytes > 0 else { return ByteBuffer(bytes: [0x00]) }
        var output = ByteBuffer()
        message.withUnsafeReadableBytes { input in
            stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
            stream.pointee.avail_in = UInt32(input.count)
            // Text compresses to well under half; a message that does not gets more room.
            var room = input.count / 2 + 64
            repeat {
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { free in
                    stream.pointee.next_out = free.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = UInt32(min(free.count, Int(UInt32.max)))
                    _ = deflate(stream, Z_SYNC_FLUSH)
                    return free.count - Int(stream.pointee.avail_out)
                }
                room = max(room, 1024)
            } while stream.pointee.avail_out == 0
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
        if output.readableBytes >= 4, output.getInteger(at: output.writerIndex - 4, as: UInt32.self) == 0x0000_ffff {
            output.moveWriterIndex(to: output.writerIndex - 4)
        }
        if resetsPerMessage { deflateReset(stream) }
        return output
    }
}
