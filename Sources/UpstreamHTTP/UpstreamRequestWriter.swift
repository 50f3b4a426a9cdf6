package import NIOCore
package import NIOHTTP1
import HTTPWire

/// Serialises an upstream request into the bytes that go on the wire, in one buffer with its
/// body (framed by its length), refusing header names and values that would break the head's framing.
package enum UpstreamRequestWriter {
    package struct InvalidHeader: Error, CustomStringConvertible {
        package let name: String
        package var description: String { "request header \(name.debugDescription) has a name or value that cannot be sent" }
    }

    /// Room for the request's bytes, usually all of them (header lines are estimated).
    package static func capacity(for head: HTTPRequestHead, body: ByteBuffer?) -> Int {
        256 + head.uri.utf8.count + 48 * head.headers.count + (body?.readableBytes ?? 0)
    }

    package static func write(_ head: HTTPRequestHead, body: ByteBuffer?, into buffer: inout ByteBuffer) throws(InvalidHeader) {
        let bodyLength = body?.readableBytes ?? 0
        buffer.reserveCapacity(minimumWritableBytes: capacity(for: head, body: body))
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(head.version == .http1_0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n")
        for (name, value) in head.headers {
            var (name, value) = (name, value)
            let valid = name.withUTF8 { name in value.withUTF8 { HTTPToken.isToken(UnsafeRawBufferPointer(name)) && HTTPToken.isValidValue(UnsafeRawBufferPointer($0)) } }
            guard valid else { throw InvalidHeader(name: name) }
        }
        // The body is always whole here: its length is the framing, whatever the head said.
        buffer.writeHeaderLines(head.headers, omitting: Self.isFraming)
        if bodyLength > 0 || Self.sendsBody(head.method) {
            buffer.writeStaticString("content-length: ")
            buffer.writeString(String(bodyLength))
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        if var body, bodyLength > 0 { buffer.writeBuffer(&body) }
    }

    private static func sendsBody(_ method: HTTPMethod) -> Bool {
        switch method {
        case .POST, .PUT, .PATCH: true
        default: false
        }
    }

    private static func isFraming(_ name: String) -> Bool {
        HTTPToken.name(name, is: "content-length") || HTTPToken.name(name, is: "transfer-encoding")
    }
}
