package import HTTPWire
package import NIOCore
package import NIOHTTP1

/// Receives one upstream response as it streams in; all calls happen on the connection's event loop.
package protocol UpstreamResponseDelegate: AnyObject {
    /// The head as read: its header lines are strings only when asked for (`headers`).
    func upstreamReceivedHead(_ head: ReceivedResponseHead)
    func upstreamReceivedBody(_ buffer: ByteBuffer)
    func upstreamFinished()
    func upstreamFailed(_ error: UpstreamError)
    /// The end of one socket read: a good moment to flush what was forwarded.
    func upstreamReadComplete()
}

extension UpstreamResponseDelegate {
    package func upstreamReadComplete() {}
}

/// One keep-alive HTTP/1.1 connection to an upstream, carrying one exchange at a time.
/// Confined to its channel's event loop. It travels through futures (pools hand it out, tunnel
/// streams pass it between loops), which need Sendable values, so the confinement is checked on
/// every call that touches its state instead of being left to convention.
package final class UpstreamHTTPConnection: @unchecked Sendable {
    package let channel: any Channel
    package let target: UpstreamTarget
    private let handler: UpstreamHTTPClientHandler
    /// Exchanges sent on it so far.
    package private(set) var exchangesStarted = 0
    /// Reading was turned off (backpressure) and not on again yet.
    private var readingPaused = false

    /// Wraps a channel set up by `UpstreamClient.addHTTPClientPipeline`; call on its event loop.
    package init(channel: any Channel, target: UpstreamTarget) throws {
        self.channel = channel
        self.target = target
        handler = try channel.pipeline.syncOperations.handler(type: UpstreamHTTPClientHandler.self)
    }

    package var isReusable: Bool {
        channel.eventLoop.assertInEventLoop()
        return channel.isActive && handler.isIdle
    }

    /// Sends a request with a complete body; the response goes to `delegate`.
    package func execute(_ head: HTTPRequestHead, body: ByteBuffer?, delegate: any UpstreamResponseDelegate, onIdle: @escaping (UpstreamHTTPConnection) -> Void) {
        channel.eventLoop.assertInEventLoop()
        exchangesStarted += 1
        handler.start(head: head, body: body, delegate: delegate) { onIdle(self) }
    }

    /// Stops reading while the client cannot keep up (backpressure), and resumes.
    package func setReading(_ enabled: Bool) {
        channel.eventLoop.assertInEventLoop()
        // Turning on what is on already would cost a trip through the pipeline every request.
        guard enabled == readingPaused else { return }
        readingPaused = !enabled
        channel.setOption(ChannelOptions.autoRead, value: enabled).whenFailure { _ in }
        if enabled { channel.read() }
    }

    /// Gives up on the exchange in flight: the connection cannot be reused mid-response.
    package func abandon() {
        channel.eventLoop.assertInEventLoop()
        handler.abandon()
        channel.close(promise: nil)
    }
}
