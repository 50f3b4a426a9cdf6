import NIOCore
import Testing
import Zlib

/// Response bodies in gzip or zlib framing, fed as they arrive, and the output limit.
@Suite(.timeLimit(.minutes(1))) struct ZlibInflaterTests {
    /// `gzip.compress(b"hello gzip, hello gzip, hello gzip", mtime=0)`.
    static let gzipped: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 87, 72, 175, 202, 44, 208, 81, 200, 192, 202, 6, 0,
                                   186, 49, 142, 38, 34, 0, 0, 0]
    /// `zlib.compress(b"hello zlib, hello zlib")`.
    static let zlibbed: [UInt8] = [120, 156, 203, 72, 205, 201, 201, 87, 168, 202, 201, 76, 210, 81, 200, 128, 179, 1, 93, 88, 8, 23]

    @Test(arguments: [1, 7, 20]) func gzipAndZlibBodiesInflateAsTheyArrive(cut: Int) throws {
        for (body, text) in [(Self.gzipped, "hello gzip, hello gzip, hello gzip"), (Self.zlibbed, "hello zlib, hello zlib")] {
            let inflater = try #require(ZlibInflater(contentEncoding: body == Self.gzipped ? " GZIP" : "deflate"))
            let output = try inflater.inflate(Array(body[..<cut])) + inflater.inflate(Array(body[cut...]))
            #expect(String(decoding: output, as: UTF8.self) == text, "cut at \(cut)")
        }
        #expect(ZlibInflater(contentEncoding: "br") == nil && ZlibInflater(contentEncoding: nil) == nil)
    }

    /// Output past the limit is refused as such, while it is being made; corrupt input is refused
    /// as corrupt.
    @Test func theLimitStopsInflationAndIsToldApartFromCorruptInput() throws {
        let compressed = PerMessageDeflate(.init()).compress(ByteBuffer(repeating: 0, count: 1 << 20))
        #expect(compressed.readableBytes < 8192)
        var tooMuch: ZlibInflater.Failure?
        do {
            _ = try PerMessageDeflate(.init()).decompress(compressed, limit: 10_000)
        } catch {
            tooMuch = error
        }
        #expect(tooMuch?.exceedsLimit == true)
        var corrupt: ZlibInflater.Failure?
        do {
            _ = try PerMessageDeflate(.init()).decompress(ByteBuffer(bytes: [0xff, 0xff, 0xff, 0x00, 0x12]))
        } catch {
            corrupt = error
        }
        #expect(corrupt != nil && corrupt?.exceedsLimit == false)
        #expect(try PerMessageDeflate(.init()).decompress(compressed, limit: 1 << 20).readableBytes == 1 << 20)
    }
}
