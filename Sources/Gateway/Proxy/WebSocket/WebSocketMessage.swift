import NIOCore
import NIOWebSocket

/// What the relay and its legs pass each other: a whole message (fragments joined, inflated)
/// or a control frame, its payload plain. Masking and compression belong to the leg that writes
/// it, which knows its side and what was agreed on its connection.
struct WebSocketMessage {
    var opcode: WebSocketOpcode
    var payload: ByteBuffer
    /// Set when the message came as one plain frame (unfragmented, unmasked, uncompressed): where
    /// that frame lies in the reader's input, so that it can be passed on as it came.
    var plainFrameSpan: Range<Int>?

    static func text(_ payload: ByteBuffer) -> WebSocketMessage {
        WebSocketMessage(opcode: .text, payload: payload)
    }
}
