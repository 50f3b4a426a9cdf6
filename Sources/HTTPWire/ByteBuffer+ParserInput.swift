package import NIOCore

/// The input buffer of a byte-level parser (the upstream response parser, the relay legs'
/// frame parser): bytes read are adopted as they are when nothing is pending, and a fully read
/// buffer is let go, so the next read is not appended to (and copied into) an old one.
extension ByteBuffer {
    package mutating func appendParserInput(_ bytes: ByteBuffer) {
        if readableBytes == 0 {
            self = bytes
        } else {
            var bytes = bytes
            writeBuffer(&bytes)
        }
    }

    package mutating func releaseIfConsumed() {
        if readableBytes == 0 { self = ByteBuffer() }
    }
}
