import Foundation
import PoolCore

/// The Codex backend's Responses event stream as Chat Completions: `chat.completion.chunk`
/// events as they come (then the usage chunk when asked for, then `[DONE]`), or one
/// `chat.completion` object at the end. Pure: the upstream's bytes in, the client's bytes out.
struct ChatStreamTranslator {
    let model: String
    let stream: Bool
    let includeUsage: Bool
    let created: Int64

    private var pending: [UInt8] = []
    private var id = "chatcmpl-\(UInt32.random(in: .min ... .max))"
    private var answeredModel: String?
    private var text = ""
    /// Function calls by the backend's output index: their index among the calls, id, name, arguments.
    private var calls: [Int: (index: Int, id: String, name: String, arguments: String, streamedArguments: Bool)] = [:]
    private var finishReason: String?
    private var usage: JSONValue?
    private var sentRole = false
    /// The backend reported a failure (`response.failed`, `error`): its message.
    private(set) var failure: String?
    private(set) var sawEnd = false

    init(model: String, stream: Bool, includeUsage: Bool, created: Int64 = Int64(Date().timeIntervalSince1970)) {
        self.model = model
        self.stream = stream
        self.includeUsage = includeUsage
        self.created = created
    }

    /// Upstream bytes; returns what the client gets now (nothing until the end when not streaming).
    mutating func consume(_ bytes: some Collection<UInt8>) -> [UInt8] {
        pending += bytes
        var output: [UInt8] = []
        while let end = Self.eventEnd(in: pending) {
            let event = Array(pending[..<end.start])
            pending.removeFirst(end.next)
            if let json = Self.data(of: event) { output += handle(json) }
        }
        return output
    }

    /// Upstream ended: the rest of a stream, or the whole answer.
    mutating func finish() -> [UInt8] {
        if !pending.isEmpty { _ = consume([UInt8(ascii: "\n"), UInt8(ascii: "\n")]) }
        guard stream else { return completion.serialized }
        var output: [UInt8] = []
        if !sawEnd, failure == nil {
            output += Self.event(.object(["error": .object(["type": .string("api_error"), "message": .string("the upstream answer ended early")])]))
        }
        output += Array("data: [DONE]\n\n".utf8)
        return output
    }

    /// The non-streamed answer (`chat.completion`).
    var completion: JSONValue {
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": text.isEmpty && !calls.isEmpty ? .null : .string(text), "refusal": .null]
        if !calls.isEmpty {
            message["tool_calls"] = .array(calls.values.sorted { $0.index < $1.index }.map { call in
                .object(["id": .string(call.id), "type": .string("function"),
                         "function": .object(["name": .string(call.name), "arguments": .string(call.arguments)])])
            })
        }
        return .object([
            "id": .string(id), "object": .string("chat.completion"), "created": .integer(created), "model": .string(answeredModel ?? model),
            "choices": .array([.object(["index": .integer(0), "message": .object(message), "finish_reason": .string(finishReason ?? "stop"),
                                        "logprobs": .null])]),
            "usage": usage ?? .null,
        ])
    }

    // MARK: Events

    private mutating func handle(_ event: JSONValue) -> [UInt8] {
        switch event["type"]?.stringValue {
        case "response.created":
            if let responseID = event["response"]?["id"]?.stringValue { id = "chatcmpl-" + responseID.replacingOccurrences(of: "resp_", with: "") }
            answeredModel = event["response"]?["model"]?.stringValue
            return roleChunk()
        case "response.output_text.delta":
            let delta = event["delta"]?.stringValue ?? ""
            text += delta
            return roleChunk() + chunk(["content": .string(delta)])
        case "response.output_item.added" where event["item"]?["type"]?.stringValue == "function_call":
            let item = event["item"] ?? .null
            let output = Int(event["output_index"]?.numberValue ?? Double(calls.count))
            let index = calls.count
            let call = (index: index, id: item["call_id"]?.stringValue ?? "call_\(index)", name: item["name"]?.stringValue ?? "",
                        arguments: "", streamedArguments: false)
            calls[output] = call
            return roleChunk() + chunk(["tool_calls": .array([.object([
                "index": .integer(Int64(index)), "id": .string(call.id), "type": .string("function"),
                "function": .object(["name": .string(call.name), "arguments": .string("")]),
            ])])])
        case "response.function_call_arguments.delta":
            guard let output = event["output_index"]?.numberValue.map(Int.init), var call = calls[output] else { return [] }
            let delta = event["delta"]?.stringValue ?? ""
            call.arguments += delta
            call.streamedArguments = true
            calls[output] = call
            return argumentsChunk(call.index, delta)
        case "response.output_item.done" where event["item"]?["type"]?.stringValue == "function_call":
            // A call announced only when done, or arguments that came whole rather than in deltas, are passed on now.
            guard let output = event["output_index"]?.numberValue.map(Int.init) else { return [] }
            var announced: [UInt8] = []
            if calls[output] == nil {
                announced = handle(.object(["type": .string("response.output_item.added"), "output_index": .integer(Int64(output)),
                                            "item": event["item"] ?? .null]))
            }
            guard var call = calls[output], !call.streamedArguments, let arguments = event["item"]?["arguments"]?.stringValue else { return announced }
            call.arguments = arguments
            calls[output] = call
            return announced + argumentsChunk(call.index, arguments)
        case "response.completed", "response.incomplete":
            sawEnd = true
            let response = event["response"] ?? .null
            finishReason = !calls.isEmpty ? "tool_calls"
                : (response["status"]?.stringValue == "incomplete" || event["type"]?.stringValue == "response.incomplete" ? "length" : "stop")
            usage = Self.usage(response["usage"])
            var output = roleChunk() + chunk([:], finishReason: finishReason)
            if stream, includeUsage, let usage {
                output += Self.event(.object(["id": .string(id), "object": .string("chat.completion.chunk"), "created": .integer(created),
                                              "model": .string(answeredModel ?? model), "choices": .array([]), "usage": usage]))
            }
            return output
        case "response.failed", "error":
            let message = event["response"]?["error"]?["message"]?.stringValue ?? event["error"]?["message"]?.stringValue ?? event["message"]?.stringValue
                ?? "the model failed to answer"
            failure = message
            guard stream else { return [] }
            return Self.event(.object(["error": .object(["type": .string("api_error"), "message": .string(message)])]))
        default:
            return []
        }
    }

    private mutating func roleChunk() -> [UInt8] {
        guard !sentRole else { return [] }
        sentRole = true
        return chunk(["role": .string("assistant"), "content": .string("")])
    }

    private func argumentsChunk(_ index: Int, _ arguments: String) -> [UInt8] {
        chunk(["tool_calls": .array([.object(["index": .integer(Int64(index)), "function": .object(["arguments": .string(arguments)])])])])
    }

    private func chunk(_ delta: [String: JSONValue], finishReason: String? = nil) -> [UInt8] {
        guard stream else { return [] }
        return Self.event(.object([
            "id": .string(id), "object": .string("chat.completion.chunk"), "created": .integer(created), "model": .string(answeredModel ?? model),
            "choices": .array([.object(["index": .integer(0), "delta": .object(delta), "finish_reason": finishReason.map(JSONValue.string) ?? .null,
                                        "logprobs": .null])]),
        ]))
    }

    private static func event(_ json: JSONValue) -> [UInt8] {
        Array("data: ".utf8) + json.serialized + Array("\n\n".utf8)
    }

    static func usage(_ usage: JSONValue?) -> JSONValue? {
        guard let usage, let input = usage["input_tokens"]?.numberValue, let output = usage["output_tokens"]?.numberValue else { return nil }
        return .object([
            "prompt_tokens": .integer(Int64(input)), "completion_tokens": .integer(Int64(output)),
            "total_tokens": .integer(Int64(usage["total_tokens"]?.numberValue ?? input + output)),
            "prompt_tokens_details": .object(["cached_tokens": .integer(Int64(usage["input_tokens_details"]?["cached_tokens"]?.numberValue ?? 0))]),
            "completion_tokens_details": .object(["reasoning_tokens": .integer(Int64(usage["output_tokens_details"]?["reasoning_tokens"]?.numberValue ?? 0))]),
        ])
    }

    // MARK: Server-Sent Events

    /// Where the first complete event ends: its length and where the next begins ("\n\n" or "\r\n\r\n").
    private static func eventEnd(in bytes: [UInt8]) -> (start: Int, next: Int)? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A, bytes[index + 1] == 0x0A { return (index, index + 2) }
            if bytes[index] == 0x0D, index + 3 < bytes.count, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                return (index, index + 4)
            }
            index += 1
        }
        return nil
    }

    /// The JSON of an event's `data:` lines.
    private static func data(of event: [UInt8]) -> JSONValue? {
        var data: [UInt8] = []
        for line in event.split(separator: 0x0A, omittingEmptySubsequences: true) {
            var line = Array(line)
            if line.last == 0x0D { line.removeLast() }
            guard line.starts(with: Array("data:".utf8)) else { continue }
            var value = line.dropFirst(5)
            if value.first == 0x20 { value = value.dropFirst() }
            if !data.isEmpty { data.append(0x0A) }
            data += value
        }
        return data.isEmpty ? nil : JSONValue.parse(data)
    }
}
