import HTTPWire
import NIOCore
import NIOHTTP1

extension ReceivedResponseHead {
    /// A head made from NIO's parts, laid out as it would have been read.
    init(_ head: HTTPResponseHead) {
        var bytes = ByteBuffer()
        var fields: [HTTPHeaderField] = []
        bytes.writeString("HTTP/\(head.version.major).\(head.version.minor) \(head.status.code) \(head.status.reasonPhrase)\r\n")
        for (name, value) in head.headers {
            let nameStart = bytes.writerIndex
            bytes.writeString(name)
            let nameEnd = bytes.writerIndex
            bytes.writeStaticString(": ")
            let valueStart = bytes.writerIndex
            bytes.writeString(value)
            fields.append(HTTPHeaderField(name: nameStart..<nameEnd, value: valueStart..<bytes.writerIndex))
            bytes.writeStaticString("\r\n")
        }
        bytes.writeStaticString("\r\n")
        self.init(version: head.version, status: head.status, bytes: bytes, fields: fields)
    }
}
