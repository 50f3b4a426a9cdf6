import Foundation
public import NIOHTTP1
import PoolCore

/// A complete response the gateway answers itself: errors, status JSON.
public struct GatewayResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The OpenAI error envelope `{"error":{"type","code","param","message"}}` with a trailing
    /// newline (ocm-reference.md §7.6), plus any extra fields Codex reads (`resets_in_seconds`).
    static func error(_ status: HTTPResponseStatus, type: String, code: String = "", message: String,
                      extra: [String: JSONValue] = [:]) -> GatewayResponse {
        var fields: [String: JSONValue] = ["type": .string(type), "code": .string(code), "param": .string(""), "message": .string(message)]
        fields.merge(extra) { _, new in new }
        return json(status, .object(["error": .object(fields)]))
    }

    static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> GatewayResponse {
        json(status, text: GatewayJSON.string(value))
    }

    static func json(_ status: HTTPResponseStatus, text: String) -> GatewayResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return GatewayResponse(status: status, headers: headers, body: Array((text + "\n").utf8))
    }

    static func text(_ status: HTTPResponseStatus, _ message: String) -> GatewayResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        return GatewayResponse(status: status, headers: headers, body: Array((message + "\n").utf8))
    }

    // MARK: The reference's answers

    static let notFound = error(.notFound, type: "invalid_request_error", message: "path must start with /v1/")
    static let methodNotAllowed = error(.methodNotAllowed, type: "invalid_request_error", message: "method not allowed")

    /// Selection failed (§7.6): 429 `usage_limit_reached` when waiting helps, else 400 text
    /// naming each candidate and why it was skipped.
    static func selectionFailed(_ failure: SelectionFailure) -> GatewayResponse {
        guard failure.isRateLimitOnly else { return text(.badRequest, failure.explanation) }
        return usageLimitReached(failure.explanation, retryAfter: failure.retryAfterSeconds)
    }

    /// The credential ran out mid-request (429 with nothing to fail over to, interruption).
    static func credentialUnavailable(_ failure: SelectionFailure?, fallback: String) -> GatewayResponse {
        guard let failure, failure.isRateLimitOnly else {
            return text(.badRequest, failure.map { "\(fallback): \($0.explanation)" } ?? fallback)
        }
        return usageLimitReached(failure.explanation, retryAfter: failure.retryAfterSeconds)
    }

    static func usageLimitReached(_ message: String, retryAfter: Int?) -> GatewayResponse {
        let response = error(.tooManyRequests, type: "usage_limit_reached", message: message,
                             extra: retryAfter.map { ["resets_in_seconds": .integer(Int64($0))] } ?? [:])
        return retryAfter.map(response.retrying(after:)) ?? response
    }

    /// The same answer with `Retry-After` (seconds).
    func retrying(after seconds: Int) -> GatewayResponse {
        var response = self
        response.headers.add(name: "retry-after", value: String(seconds))
        return response
    }
}

/// Compact JSON with sorted keys and unescaped slashes, for everything the gateway writes.
enum GatewayJSON {
    static func string(_ value: JSONValue) -> String {
        String(decoding: data(value), as: UTF8.self)
    }

    static func data(_ value: JSONValue) -> Data {
        Data(value.serialized)
    }

    static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        JSONValue.parse(bytes)
    }
}
