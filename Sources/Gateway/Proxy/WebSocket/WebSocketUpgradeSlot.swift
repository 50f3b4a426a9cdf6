import NIOCore
import NIOHTTP1
import Zlib

/// Carries the outcome of preparing a WebSocket upgrade from the upgrader's callbacks to the
/// pipeline: either the upstream session to relay to, or the answer to send instead of a 101.
/// Confined to the client channel's event loop (the upgrader's closures reach it through a
/// `NIOLoopBound`).
final class WebSocketUpgradeSlot {
    private var refusal: GatewayResponse?
    private var session: PreparedWebSocketSession?

    func refuse(_ response: GatewayResponse) {
        refusal = response
    }

    func takeRefusal() -> GatewayResponse? {
        defer { refusal = nil }
        return refusal
    }

    func prepare(_ session: PreparedWebSocketSession) {
        self.session = session
    }

    func takeSession() -> PreparedWebSocketSession? {
        defer { session = nil }
        return session
    }
}

/// An upstream WebSocket that is open and waiting for the client side of the relay.
struct PreparedWebSocketSession {
    var upstream: any Channel
    /// On the upstream channel's loop, which a tunnel stream does not share with the client.
    var upstreamLeg: NIOLoopBound<WebSocketLegHandler>
    var tag: String
    var user: AuthenticatedUser
    var isNewSession: Bool
    var sessionID: String?
    var requestID: String
    /// permessage-deflate as agreed with the client; nil: uncompressed.
    var clientDeflate: PerMessageDeflate.Agreement?
    /// Through a connector: the connector's own credential that serves the session, as it said.
    var connectorCredential: String? = nil
}
