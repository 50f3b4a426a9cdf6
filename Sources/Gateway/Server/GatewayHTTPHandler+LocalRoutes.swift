import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore

/// The routes the gateway answers itself (status, the ChatGPT-mode endpoints, admin, the
/// dashboard, models, metrics) and the reverse-session takeover, once a request has arrived whole.
extension GatewayHTTPHandler {
    func handleLocal(_ route: GatewayRoute, head: HTTPRequestHead, user: AuthenticatedUser?, context: ChannelHandlerContext) {
        switch route {
        case .metrics:
            serveMetrics(head)
        case .reverse:
            guard runtime.reverseTunnels.acceptsSessions else {
                return send(.error(.notFound, type: "invalid_request_error", message: "no reverse (connector) credential is configured on this instance"))
            }
            switch runtime.acceptReverse(head, remoteAddress: context.channel.remoteAddress) {
            case .refused(let refusal):
                send(refusal)
            case .accepted(let tag):
                do {
                    try runtime.takeOverReverseConnection(context.channel, tag: tag)
                } catch {
                    logger.error("cannot start the reverse session for \(tag): \(error)")
                    context.close(promise: nil)
                }
            }
        case .status(let watchRequested, let detail):
            guard head.method == .GET else { return send(.methodNotAllowed) }
            guard let user else { return }
            for tag in runtime.withPool({ $0.members(of: user.provider) }) { runtime.pollIfStale(tag) }
            if detail {
                send(.json(.ok, text: runtime.operatorStatus(for: user).json))
            } else if watchRequested {
                let watch = StatusWatch(runtime: runtime, user: user, eventLoop: context.eventLoop, responder: self)
                self.watch = watch
                watch.start()
            } else {
                send(.json(.ok, text: runtime.aggregate(for: user).json))
            }
        case .chatGPT(let chatGPT):
            guard head.method == .GET else { return send(.methodNotAllowed) }
            guard let user else { return }
            send(.json(.ok, runtime.chatGPTAnswer(chatGPT, for: user)))
        case .admin(let path, let query):
            guard let user else { return }
            if path == "events" {
                guard head.method == .GET else { return send(.methodNotAllowed) }
                let stream = AdminEventStream(runtime: runtime, user: user, eventLoop: context.eventLoop, responder: self)
                adminEvents = stream
                return stream.start()
            }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            AdminAPI.answer(method: head.method, path: path, query: query, user: user, runtime: runtime, eventLoop: context.eventLoop)
                .whenSuccess { response in handler.value.send(response) }
        case .dashboard:
            guard head.method == .GET || head.method == .HEAD else { return send(.methodNotAllowed) }
            send(DashboardPage.response)
        case .models(let id):
            guard head.method == .GET else { return send(.methodNotAllowed) }
            guard let user else { return }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            runtime.modelCatalog.answer(id, for: user, runtime: runtime, on: context.eventLoop).whenSuccess { handler.value.send($0) }
        case .proxy, .notFound, .invalidPath:
            break
        }
    }

    private func serveMetrics(_ head: HTTPRequestHead) {
        let settings = runtime.configuration.metrics
        guard settings.enabled else { return send(.notFound) }
        guard head.method == .GET else { return send(.methodNotAllowed) }
        if let token = settings.token {
            guard case .success(let presented) = UserAuthenticator.bearerToken(in: head.headers),
                  token.constantTimeEquals(presented) else {
                logger.warning("metrics scrape refused from \(context?.channel.remoteAddress.map { "\($0)" } ?? "unknown"): missing or wrong bearer token")
                return send(.error(.unauthorized, type: "authentication_error", message: "metrics need Authorization: Bearer with the metrics token"))
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
        send(GatewayResponse(status: .ok, headers: headers, body: runtime.metricsExposition()))
    }
}
