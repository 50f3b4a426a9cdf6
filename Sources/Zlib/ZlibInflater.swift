import CZlib
import Foundation

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
    }

    private let stream: UnsafeMutablePointer<z_stream>
    /// Decompressed output beyond this is refused (decompression bombs).
    private let outputLimit: Int

    package init(format: Format, outputLimit: Int = 64 << 20) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 window bits; +32 detects gzip or zlib headers, negative means raw.
        _ = codexpool_inflateInit2(stream, format == .raw ? -15 : 15 + 32)
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
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        var failure: Failure?
        input.withUnsafeMutableBufferPointer { inputBytes in
            stream.pointee.next_in = inputBytes.baseAddress
            stream.pointee.avail_in = UInt32(inputBytes.count)
            repeat {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { chunkBytes -> (Int32, Int) in
                    stream.pointee.next_out = chunkBytes.baseAddress
                    stream.pointee.avail_out = UInt32(chunkBytes.count)
                    let status = CZlib.inflate(stream, Z_SYNC_FLUSH)
                    return (status, chunkBytes.count - Int(stream.pointee.avail_out))
                }
                output += chunk[0..<produced]
                if status == Z_STREAM_END { break }
                if status != Z_OK, status != Z_BUF_ERROR {
                    failure = Failure(description: "corrupt compressed data (zlib status \(status))")
                    break
                }
                if output.count > outputLimit {
                    failure = Failure(description: "decompressed data exceeds \(outputLimit) bytes")
                    break
                }
                if status == Z_BUF_ERROR, produced == 0 { break }
            } while stream.pointee.avail_in > 0 || stream.pointee.avail_out == 0
            stream.pointee.next_in = nil
        }
        if let failure { throw failure }
        return output
    }
}
