package import NIOCore
package import NIOHTTP1

/// Serialises a server's response head, and decides how the body after it is framed.
package enum HTTPResponseHeadWriter {
    package enum BodyFraming: Equatable {
        /// Written as it comes: the head gives its length, or it has none (1xx, 204, 304).
        case asIs
        /// In chunks: no length given, to an HTTP/1.1 client.
        case chunked
        /// Until the connection closes: no length given, to an HTTP/1.0 client.
        case untilClose
    }

    /// Writes `head`, with `transfer-encoding: chunked` added when it gives no length and the
    /// client reads chunks.
    package static func write(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) -> BodyFraming {
        write(version: head.version, status: head.status, into: &buffer) { buffer in
            var framing = HeaderFraming()
            for (name, _) in head.headers {
                switch name.utf8.count {
                case 14 where HTTPToken.name(name, is: "content-length"): framing.givesLength = true
                case 17 where HTTPToken.name(name, is: "transfer-encoding"): framing.chunked = true
                default: break
                }
            }
            buffer.writeHeaderLines(head.headers)
            return framing
        }
    }

    /// What the header lines written say about the body's framing.
    package struct HeaderFraming {
        package var givesLength = false
        package var chunked = false

        package init(givesLength: Bool = false, chunked: Bool = false) {
            self.givesLength = givesLength
            self.chunked = chunked
        }
    }

    /// Writes a head whose header lines `writeLines` writes (a proxy copies them from the
    /// bytes it read), then the framing line it needs and the blank line.
    package static func write(version: HTTPVersion, status: HTTPResponseStatus, into buffer: inout ByteBuffer,
                              lines writeLines: (inout ByteBuffer) -> HeaderFraming) -> BodyFraming {
        let code = status.code
        buffer.writeStaticString(version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        let given = writeLines(&buffer)
        let framing: BodyFraming
        if code < 200 || code == 204 || code == 304 || (given.givesLength && !given.chunked) {
            framing = .asIs
        } else if given.chunked {
            framing = .chunked
        } else if version == .http1_0 {
            framing = .untilClose
        } else {
            buffer.writeStaticString("transfer-encoding: chunked\r\n")
            framing = .chunked
        }
        buffer.writeStaticString("\r\n")
        return framing
    }
}
