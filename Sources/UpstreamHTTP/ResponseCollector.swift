import HTTPWire
import NIOCore
import NIOHTTP1
import Zlib

/// Gathers a whole response for `UpstreamClient.collect`.
final class ResponseCollector: UpstreamResponseDelegate {
    package let promise: EventLoopPromise<UpstreamClient.CollectedResponse>
    private let limit: Int
    private let connection: UpstreamHTTPConnection
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var inflater: ZlibInflater?

    package init(promise: EventLoopPromise<UpstreamClient.CollectedResponse>, limit: Int, connection: UpstreamHTTPConnection) {
        self.promise = promise
        self.limit = limit
        self.connection = connection
    }

    package func upstreamReceivedHead(_ head: ReceivedResponseHead) {
        self.head = head.head
        inflater = ZlibInflater(contentEncoding: head.first(name: "content-encoding"))
    }

    package func upstreamReceivedBody(_ buffer: ByteBuffer) {
        do {
            if let inflater {
                body += try inflater.inflate(Array(buffer.readableBytesView))
            } else {
                body += buffer.readableBytesView
            }
        } catch {
            connection.abandon()
            return promise.fail(UpstreamError(.malformedResponse, "cannot decode the upstream body: \(error)"))
        }
        if body.count > limit {
            connection.abandon()
            promise.fail(UpstreamError(.malformedResponse, "upstream response larger than \(limit) bytes"))
        }
    }

    package func upstreamFinished() {
        guard let head else { return promise.fail(UpstreamError(.malformedResponse, "no response head")) }
        var headers = head.headers
        if inflater != nil {
            headers.remove(name: "content-encoding")
            headers.remove(name: "content-length")
        }
        promise.succeed(.init(status: Int(head.status.code), headers: headers, body: body))
    }

    package func upstreamFailed(_ error: UpstreamError) {
        promise.fail(error)
    }
}
