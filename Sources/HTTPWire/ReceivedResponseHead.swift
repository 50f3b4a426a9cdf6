package import NIOCore
package import NIOHTTP1

/// A response head as it was read: its bytes, and where each header's name and value lie in
/// them. A proxy copies most header lines on as they are and reads a few; a string for every
/// name and value (NIO's `HTTPHeaders`) is made only for whoever asks for `headers`.
package struct ReceivedResponseHead: Sendable, Equatable {
    package let version: HTTPVersion
    package let status: HTTPResponseStatus
    /// The whole head, status line to blank line.
    package let bytes: ByteBuffer
    package let fields: [HTTPHeaderField]

    package init(version: HTTPVersion, status: HTTPResponseStatus, bytes: ByteBuffer, fields: [HTTPHeaderField]) {
        self.version = version
        self.status = status
        self.bytes = bytes
        self.fields = fields
    }

    /// Every header as a string pair, in order.
    package var headers: HTTPHeaders {
        withFields { bytes, fields in HTTPHeaderFields.headers(fields, in: bytes) }
    }

    /// As NIO's head.
    package var head: HTTPResponseHead {
        HTTPResponseHead(version: version, status: status, headers: headers)
    }

    /// The first value of the header `name` (given in lower case; matched in any case).
    package func first(name: StaticString) -> String? {
        withFields { bytes, fields in
            for field in fields where HTTPToken.name(bytes[field.name], is: name) {
                return HTTPHeaderFields.string(bytes, field.value)
            }
            return nil
        }
    }

    /// Whether the first value of the header `name` starts with `prefix` (both given in lower
    /// case; matched in any case), read from the bytes: no string is made for it.
    package func first(name: StaticString, hasPrefix prefix: StaticString) -> Bool {
        withFields { bytes, fields in
            guard let field = fields.first(where: { HTTPToken.name(bytes[$0.name], is: name) }) else { return false }
            return HTTPToken.name(UnsafeRawBufferPointer(rebasing: bytes[field.value]), hasPrefix: prefix)
        }
    }

    /// The head's bytes with the fields' ranges, which are offsets into them.
    @inlinable package func withFields<Result>(_ body: (UnsafeRawBufferPointer, [HTTPHeaderField]) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeReadableBytes { try body($0, fields) }
    }
}
