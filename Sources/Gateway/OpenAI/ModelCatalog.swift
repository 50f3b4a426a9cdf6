import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PoolCore
import Synchronization
import UpstreamHTTP

/// `GET /v1/models` and `GET /v1/models/{id}`: the models the user's pool can serve — the union
/// of the backend's catalogs for the plans of the user's credentials (codex-wire-2026.md §2),
/// each cached with its ETag and refreshed in the background once stale — or the configured
/// `models:` list when no catalog can be had.
final class ModelCatalog: Sendable {
    private struct Entry {
        var slugs: [String]
        var etag: String?
        var fetchedAt: Date
    }

    /// By plan type: accounts of one plan see one catalog.
    private let entries = Mutex<[String: Entry]>([:])
    private let refreshing = Mutex<Set<String>>([])
    static let freshFor: TimeInterval = 300
    static let clientVersion = "0.163.0"

    /// The OpenAI answer for `id` (nil: the list).
    func answer(_ id: String?, for user: AuthenticatedUser, runtime: GatewayRuntime, on eventLoop: any EventLoop) -> EventLoopFuture<GatewayResponse> {
        models(for: user, runtime: runtime, on: eventLoop).map { slugs in
            guard let id else { return .json(.ok, .object(["object": .string("list"), "data": .array(slugs.map(Self.model))])) }
            guard slugs.contains(id) else {
                return .error(.notFound, type: "invalid_request_error", code: "model_not_found",
                              message: "The model '\(id)' does not exist or this pool cannot serve it", extra: ["param": .string("model")])
            }
            return .json(.ok, Self.model(id))
        }
    }

    private static func model(_ id: String) -> JSONValue {
        .object(["id": .string(id), "object": .string("model"), "created": .integer(1_700_000_000), "owned_by": .string("openai")])
    }

    /// The slugs the user's pool serves, in catalog order.
    func models(for user: AuthenticatedUser, runtime: GatewayRuntime, on eventLoop: any EventLoop) -> EventLoopFuture<[String]> {
        // One credential per plan asks for its plan's catalog; connectors' accounts are not asked.
        let byPlan: [(plan: String, tag: String)] = runtime.withPool { pool in
            var seen: Set<String> = []
            return pool.members(of: user.provider).compactMap { tag -> (String, String)? in
                guard let state = pool[tag], state.kind != .externalReceiver, !state.isAPIKey else { return nil }
                let plan = state.isExternal ? "peer:\(tag)" : (state.usage.planType ?? "unknown")
                return seen.insert(plan).inserted ? (plan, tag) : nil
            }
        }
        let now = runtime.now
        var lists: [EventLoopFuture<[String]?>] = []
        for (plan, tag) in byPlan {
            let cached = entries.withLock { $0[plan] }
            if let cached {
                if now.timeIntervalSince(cached.fetchedAt) > Self.freshFor { _ = refresh(plan, tag: tag, runtime: runtime, on: eventLoop) }
                lists.append(eventLoop.makeSucceededFuture(cached.slugs))
            } else {
                lists.append(refresh(plan, tag: tag, runtime: runtime, on: eventLoop))
            }
        }
        let fallback = runtime.configuration.fallbackModels
        return EventLoopFuture.whenAllComplete(lists, on: eventLoop).map { results in
            var union: [String] = []
            for case .success(let slugs?) in results { for slug in slugs where !union.contains(slug) { union.append(slug) } }
            return union.isEmpty ? fallback : union
        }
    }

    /// Asks `tag`'s upstream for its catalog (with the ETag held); nil when it cannot be had.
    private func refresh(_ plan: String, tag: String, runtime: GatewayRuntime, on eventLoop: any EventLoop) -> EventLoopFuture<[String]?> {
        guard refreshing.withLock({ $0.insert(plan).inserted }) else { return eventLoop.makeSucceededFuture(entries.withLock { $0[plan]?.slugs }) }
        let held = entries.withLock { $0[plan] }
        var headers = HTTPHeaders([("accept", "application/json"), ("version", Self.clientVersion)])
        if let etag = held?.etag { headers.add(name: "if-none-match", value: etag) }
        let uri = "/v1/models?client_version=\(Self.clientVersion)"
        return runtime.plan(for: tag, method: .GET, uri: uri, clientHeaders: headers, bodyLength: nil, webSocket: false, on: eventLoop)
            .flatMap { plan -> EventLoopFuture<UpstreamClient.CollectedResponse> in
                guard plan.tunnelTag == nil else { return eventLoop.makeFailedFuture(UpstreamError(.connect, "catalogs are not read through tunnels")) }
                return runtime.upstream.collect(plan.target, method: .GET, path: plan.uri, headers: plan.headers, on: eventLoop)
            }
            .map { [self] response -> [String]? in
                let now = runtime.now
                switch response.status {
                case 304 where held != nil:
                    entries.withLock { $0[plan]?.fetchedAt = now }
                    return held?.slugs
                case 200:
                    guard let slugs = Self.slugs(in: response.body) else { return held?.slugs }
                    entries.withLock { $0[plan] = Entry(slugs: slugs, etag: response.headers.first(name: "etag"), fetchedAt: now) }
                    return slugs
                default:
                    runtime.logger.info("model catalog for \(tag): HTTP \(response.status)")
                    return held?.slugs
                }
            }
            .recover { error in
                runtime.logger.info("model catalog for \(tag): \(error)")
                return held?.slugs
            }
            .always { [self] _ in _ = refreshing.withLock { $0.remove(plan) } }
    }

    /// The backend's `{"models":[{"slug"}]}`, or another codexpool's `{"data":[{"id"}]}`.
    static func slugs(in body: [UInt8]) -> [String]? {
        guard let json = JSONValue.parse(body) else { return nil }
        if let models = json["models"]?.arrayValue {
            return models.compactMap { model in
                model["visibility"]?.stringValue == "hide" ? nil : model["slug"]?.stringValue
            }
        }
        return json["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
    }
}
