import NIOCore
import NIOHTTP1

/// The client side of one HTTP exchange, as a proxied or generated response writes to it.
/// Called only on the client connection's event loop.
protocol ClientResponder: AnyObject {
    var isClientWritable: Bool { get }
    func sendHead(_ head: HTTPResponseHead)
    /// Writes and flushes: SSE must reach the client as it arrives.
    func sendBody(_ buffer: ByteBuffer)
    func sendEnd()
    func send(_ response: GatewayResponse)
    /// Ends the connection without finishing the response (the client sees a cut stream).
    func abortConnection()
}
