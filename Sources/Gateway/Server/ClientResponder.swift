import NIOCore
import NIOHTTP1

/// The client side of one HTTP exchange, as a proxied or generated response writes to it.
/// Called only on the client connection's event loop.
protocol ClientResponder: AnyObject {
    var isClientWritable: Bool { get }
    func sendHead(_ head: HTTPResponseHead)
    /// A head whose header lines `writeLines` writes (copied from an upstream head's bytes);
    /// it gives whether they include a length.
    func sendHead(version: HTTPVersion, status: HTTPResponseStatus, writingLines writeLines: (inout ByteBuffer) -> Bool)
    /// Writes and flushes: SSE must reach the client as it arrives.
    func sendBody(_ buffer: ByteBuffer)
    /// Writes without flushing; the caller flushes at the end of the read that produced it.
    func writeBody(_ buffer: ByteBuffer)
    func flush()
    func sendEnd()
    func send(_ response: GatewayResponse)
    /// Ends the connection without finishing the response (the client sees a cut stream).
    func abortConnection()
}

extension ClientResponder {
    /// The head of an answer streamed until it ends (status watch, event stream): 200, not cached.
    func sendStreamHead(contentType: String) {
        sendHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([("content-type", contentType), ("cache-control", "no-cache")])))
    }
}
