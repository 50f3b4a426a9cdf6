import NIOCore
import NIOHTTP1
import PoolCore

/// `POST /v1/chat/completions`: the request becomes a Responses request before it meets the
/// pool (same users, limits, stickiness, failover, history), and its answer is translated back
/// by a `ChatStreamTranslator` as it streams.
enum ChatCompletions {
    enum Outcome {
        /// The Responses body to send, and the translator for its answer.
        case translated(ByteBuffer, ChatStreamTranslator)
        /// The client's 400.
        case refused(GatewayResponse)
    }

    static func translate(_ body: ByteBuffer, head: inout HTTPRequestHead) -> Outcome {
        guard let json = JSONValue.parse(body.readableBytesView) else {
            return .refused(.error(.badRequest, type: "invalid_request_error", code: "invalid_json", message: "the request body is not valid JSON"))
        }
        let translation: ChatRequestTranslation
        do {
            translation = try ChatRequestTranslation(chat: json)
        } catch {
            return .refused(.error(.badRequest, type: "invalid_request_error", code: error.parameter == nil ? "invalid_request" : "unsupported_parameter",
                                   message: error.message, extra: ["param": error.parameter.map(JSONValue.string) ?? .null]))
        }
        head.uri = "/v1/responses"
        head.headers.replaceOrAdd(name: "content-type", value: "application/json")
        head.headers.replaceOrAdd(name: "accept", value: "text/event-stream")
        // Sticky by the conversation unless the client names its session itself.
        if SessionKey.from(head.headers) == nil { head.headers.add(name: "session-id", value: translation.stickyKey) }
        let translator = ChatStreamTranslator(model: translation.model, stream: translation.stream, includeUsage: translation.includeUsage)
        return .translated(ByteBuffer(bytes: translation.body.serialized), translator)
    }
}
