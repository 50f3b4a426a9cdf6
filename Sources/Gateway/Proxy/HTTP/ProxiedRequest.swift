import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore

/// A proxied HTTP request made ready for the pool: an OpenAI-API request in the form the Codex
/// backend takes (chat as Responses, image edits as JSON), and admitted under the user's limits
/// — or the answer the client gets instead.
struct ProxiedRequest {
    var head: HTTPRequestHead
    var body: ByteBuffer
    /// The route the client asked for (`chat_completions`, …), for metrics and history.
    var routeLabel: String?
    /// A chat request: its Responses answer is translated back.
    var chat: ChatStreamTranslator?
    var isImageRequest: Bool
    /// Refusals go out in the OpenAI JSON shape (chat, images).
    var speaksOpenAI: Bool
    /// The user's session, open against `max_concurrent_sessions` until the exchange ends.
    var hold: SessionHold?

    enum Outcome {
        case ready(ProxiedRequest)
        case answered(GatewayResponse)
    }

    static func prepare(head: HTTPRequestHead, body: ByteBuffer, user: AuthenticatedUser, runtime: GatewayRuntime, logger: Logger) -> Outcome {
        var head = head
        // Set only when it changes: setting copies the head's storage, which the handler still holds.
        let canonicalURI = GatewayRoute.canonicalProxyURI(head.uri)
        if canonicalURI != head.uri { head.uri = canonicalURI }
        let path = GatewayRoute.pathAndQuery(head.uri).path
        let route = GatewayRoute.ProxiedRoute(rawValue: path)
        var request = ProxiedRequest(head: head, body: body, routeLabel: route?.metricsLabel, chat: nil,
                                     isImageRequest: route?.isImages ?? false, speaksOpenAI: route?.speaksOpenAI ?? false, hold: nil)
        if route == .chatCompletions {
            guard head.method == .POST else { return .answered(.methodNotAllowed) }
            switch ChatCompletions.translate(body, head: &request.head) {
            case .refused(let refusal): return .answered(refusal)
            case .translated(let translated, let translator):
                request.body = translated
                request.chat = translator
            }
        }
        if request.isImageRequest {
            guard head.method == .POST else { return .answered(.methodNotAllowed) }
            switch ImageRequests.translate(body, head: &request.head, edit: route == .imageEdits) {
            case .refused(let refusal): return .answered(refusal)
            case .forward(let translated): request.body = translated
            }
        }
        // Limits before a credential is chosen (and after a malformed request was refused, which uses nothing).
        let requestID = logger[metadataKey: "request"]?.description ?? ""
        let sessionKey = SessionKey.from(request.head.headers) ?? requestID
        switch runtime.admit(user, sessionKey: sessionKey, countsRequest: true, logger: logger) {
        case .failure(let refusal):
            runtime.recordFinished(FinishedRequest(
                transport: .http, outcome: .userLimited, credential: nil, user: user, requestID: requestID, model: nil,
                route: route?.metricsLabel ?? path, status: 429, timeToFirstByte: nil, duration: .zero, error: refusal.message(now: runtime.now)))
            return .answered(runtime.userLimitResponse(refusal))
        case .success(let hold):
            request.hold = hold
            return .ready(request)
        }
    }
}
