import CZlib
import Foundation
package import NIOCore

/// Streaming zlib decompression for gzip/deflate bodies and permessage-deflate messages.
package final class ZlibInflater {
    package enum Format {
        /// gzip or zlib, detected from the header (`Content-Encoding: gzip` / `deflate`).
        case gzipOrZlib
        /// Raw deflate without header (permessage-deflate, RFC 7692).
        case raw
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
        /// The output would have grown past the limit (the input itself may be sound).
        package var exceedsLimit = false
    }

    private let stream: UnsafeMutablePointer<z_stream>
    private let format: Format
    /// Decompressed output beyond this is refused (decompression bombs).
    private let outputLimit: Int

    package init(format: Format, outputLimit: Int = 64 << 20) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 window bits; +32 detects gzip or zlib headers, negative means raw.
        _ = codexpool_inflateInit2(stream, format == .raw ? -15 : 15 + 32)
        self.format = format
        self.outputLimit = outputLimit
    }

    /// An inflater for a `Content-Encoding`, or nil when the body is not compressed.
    package convenience init?(contentEncoding: String?) {
        guard let encoding = contentEncoding?.lowercased().trimmingCharacters(in: .whitespaces), encoding == "gzip" || encoding == "deflate" || encoding == "x-gzip" else {
            return nil
        }
        self.init(format: .gzipOrZlib)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Decompresses the next piece of input.
    package func inflate(_ input: [UInt8]) throws(Failure) -> [UInt8] {
        var output = ByteBuffer()
        _ = try input.withUnsafeBytes { bytes in
            Result { () throws(Failure) in try inflate(bytes, into: &output, limit: outputLimit) }
        }.get()
        return Array(output.readableBytesView)
    }

    /// Decompresses the next piece of input onto the end of `output`, zlib writing straight into
    /// the buffer's free space; refuses to let `output` grow past `limit` readable bytes (or the
    /// inflater's own limit, if lower). True when the input ended the compressed stream.
    @discardableResult
    package func inflate(_ input: UnsafeRawBufferPointer, into output: inout ByteBuffer, limit: Int) throws(Failure) -> Bool {
        let limit = min(limit, outputLimit)
        guard let base = input.baseAddress, !input.isEmpty else { return false }
        // zlib reads through a mutable pointer type without writing to it.
        stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        defer { stream.pointee.next_in = nil }
        let room = max(1024, min(input.count * 4, 256 * 1024))
        repeat {
            var status = Z_OK
            let produced = output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { free in
                stream.pointee.next_out = free.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(min(free.count, Int(UInt32.max)))
                status = CZlib.inflate(stream, Z_SYNC_FLUSH)
                return free.count - Int(stream.pointee.avail_out)
            }
            stream.pointee.next_out = nil
            if status == Z_STREAM_END {
                // A sender may end a message with a final block (RFC 7692 §7.2.3.4 shows one):
                // the next message starts a fresh stream.
                if format == .raw { inflateReset(stream) }
                return true
            }
            if status != Z_OK, status != Z_BUF_ERROR { throw Failure(description: "corrupt compressed data (zlib status \(status))") }
            if output.readableBytes > limit { throw Failure(description: "decompressed data exceeds \(limit) bytes", exceedsLimit: true) }
            if status == Z_BUF_ERROR, produced == 0 { break }
        } while stream.pointee.avail_in > 0 || stream.pointee.avail_out == 0
        return false
    }
}
