import NIOCore
import NIOWebSocket

/// One frame as it lies on the wire (RFC 6455 §5.2): what the relay legs' parser reads and
/// their writer writes. A plain value, where NIO's `WebSocketFrame` keeps its payload in a
/// class of its own: that box was an allocation, and a retain or two, for every relayed message.
struct WebSocketWireFrame {
    var fin = true
    /// Set on the first frame of a compressed message (permessage-deflate).
    var rsv1 = false
    var opcode: WebSocketOpcode
    /// Present when the payload is masked: it is as read, or is masked by the writer with this key.
    var maskKey: WebSocketMaskingKey?
    var payload: ByteBuffer
    /// Where the whole frame, header included, lay in its parser's input (parsed frames only).
    var span: Range<Int>?
}
