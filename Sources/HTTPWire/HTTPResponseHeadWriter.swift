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
        let code = head.status.code
        var givesLength = false
        var chunked = false
        for (name, _) in head.headers {
            switch name.utf8.count {
            case 14 where HTTPToken.name(name, is: "content-length"): givesLength = true
            case 17 where HTTPToken.name(name, is: "transfer-encoding"): chunked = true
            default: break
            }
        }
        buffer.writeStaticString(head.version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        buffer.writeHeaderLines(head.headers)
        let framing: BodyFraming
        if code < 200 || code == 204 || code == 304 || (givesLength && !chunked) {
            framing = .asIs
        } else if chunked {
            framing = .chunked
        } else if head.version == .http1_0 {
            framing = .untilClose
        } else {
            buffer.writeStaticString("transfer-encoding: chunked\r\n")
            framing = .chunked
        }
        buffer.writeStaticString("\r\n")
        return framing
    }
}
