import Foundation
import PoolCore

/// A Chat Completions request (`POST /v1/chat/completions`) as the Responses request the Codex
/// backend takes. Pure: JSON in, JSON out, or the OpenAI-shaped reason it cannot be done —
/// a parameter the backend has no equivalent for is refused by name, never dropped silently.
struct ChatRequestTranslation {
    /// The Responses request body.
    var body: JSONValue
    var model: String
    /// The client asked for chat-completion chunks (else one `chat.completion` object).
    var stream: Bool
    /// `stream_options.include_usage`: a last chunk with the usage.
    var includeUsage: Bool
    /// Keeps the conversation on one account (and the backend's prompt cache warm): the
    /// `user` field, else a digest of the conversation's opening messages.
    var stickyKey: String

    struct Refusal: Error, Equatable {
        var message: String
        var parameter: String?
    }

    /// What the backend can honour; anything else is refused.
    static let supported: Set<String> = [
        "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
        "max_completion_tokens", "max_tokens", "response_format", "user", "store", "metadata", "n",
    ]

    init(chat: JSONValue) throws(Refusal) {
        guard case .object(let request) = chat else { throw Refusal(message: "the request body must be a JSON object", parameter: nil) }
        if let unsupported = request.keys.sorted().first(where: { !Self.supported.contains($0) }) {
            throw Refusal(message: "Unsupported parameter: '\(unsupported)' is not supported by this server (a Codex subscription pool)", parameter: unsupported)
        }
        guard let model = request["model"]?.stringValue, !model.isEmpty else { throw Refusal(message: "you must provide a model parameter", parameter: "model") }
        guard let messages = request["messages"]?.arrayValue, !messages.isEmpty else {
            throw Refusal(message: "'messages' must be a non-empty array", parameter: "messages")
        }
        if let n = request["n"], n.numberValue != 1 { throw Refusal(message: "only n: 1 is supported", parameter: "n") }
        if request["store"]?.boolValue == true { throw Refusal(message: "store: true is not supported; conversations are not stored", parameter: "store") }
        self.model = model
        stream = request["stream"]?.boolValue ?? false
        includeUsage = request["stream_options"]?["include_usage"]?.boolValue ?? false

        var instructions: [String] = []
        var input: [JSONValue] = []
        for (index, message) in messages.enumerated() {
            try Self.translate(message, at: index, instructions: &instructions, input: &input)
        }
        var body: [String: JSONValue] = ["model": .string(model), "input": .array(input), "stream": .bool(true), "store": .bool(false)]
        if !instructions.isEmpty { body["instructions"] = .string(instructions.joined(separator: "\n\n")) }
        if let tools = request["tools"] { body["tools"] = try Self.tools(tools) }
        if let choice = request["tool_choice"] { body["tool_choice"] = try Self.toolChoice(choice) }
        if let parallel = request["parallel_tool_calls"] { body["parallel_tool_calls"] = parallel }
        if let effort = request["reasoning_effort"] {
            guard let text = effort.stringValue, ["none", "minimal", "low", "medium", "high", "xhigh"].contains(text) else {
                throw Refusal(message: "reasoning_effort must be one of none, minimal, low, medium, high, xhigh", parameter: "reasoning_effort")
            }
            body["reasoning"] = .object(["effort": .string(text)])
        }
        if let limit = request["max_completion_tokens"] ?? request["max_tokens"] {
            guard let count = limit.numberValue, count >= 1, count == count.rounded() else {
                throw Refusal(message: "max_completion_tokens must be a positive whole number", parameter: "max_completion_tokens")
            }
            body["max_output_tokens"] = .integer(Int64(count))
        }
        if let format = request["response_format"], let translated = try Self.responseFormat(format) {
            body["text"] = .object(["format": translated])
        }
        let user = request["user"]?.stringValue
        stickyKey = user.map { "chat-user-\($0)" } ?? "chat-" + Self.digest(messages.prefix(2))
        body["prompt_cache_key"] = .string(stickyKey)
        self.body = .object(body)
    }

    private static func translate(_ message: JSONValue, at index: Int, instructions: inout [String], input: inout [JSONValue]) throws(Refusal) {
        let parameter = "messages[\(index)]"
        guard let role = message["role"]?.stringValue else { throw Refusal(message: "\(parameter) has no role", parameter: parameter) }
        switch role {
        case "system", "developer":
            instructions.append(try text(message["content"], parameter: parameter))
        case "user":
            input.append(.object(["type": .string("message"), "role": .string("user"), "content": .array(try userContent(message["content"], parameter: parameter))]))
        case "assistant":
            if let content = message["content"], content != .null {
                let text = try text(content, parameter: parameter)
                if !text.isEmpty {
                    input.append(.object(["type": .string("message"), "role": .string("assistant"),
                                          "content": .array([.object(["type": .string("output_text"), "text": .string(text)])])]))
                }
            }
            for (callIndex, call) in (message["tool_calls"]?.arrayValue ?? []).enumerated() {
                guard let id = call["id"]?.stringValue, let name = call["function"]?["name"]?.stringValue else {
                    throw Refusal(message: "\(parameter).tool_calls[\(callIndex)] needs an id and a function name", parameter: parameter)
                }
                input.append(.object(["type": .string("function_call"), "call_id": .string(id), "name": .string(name),
                                      "arguments": .string(call["function"]?["arguments"]?.stringValue ?? "{}")]))
            }
        case "tool":
            guard let id = message["tool_call_id"]?.stringValue else { throw Refusal(message: "\(parameter) (tool) needs a tool_call_id", parameter: parameter) }
            input.append(.object(["type": .string("function_call_output"), "call_id": .string(id), "output": .string(try text(message["content"], parameter: parameter))]))
        default:
            throw Refusal(message: "\(parameter) has an unknown role '\(role)'", parameter: parameter)
        }
    }

    /// A message's text: a string, or text parts joined.
    private static func text(_ content: JSONValue?, parameter: String) throws(Refusal) -> String {
        switch content {
        case .string(let text): return text
        case .array(let parts):
            var texts: [String] = []
            for part in parts {
                guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                    throw Refusal(message: "\(parameter): only text parts are allowed here", parameter: parameter)
                }
                texts.append(text)
            }
            return texts.joined(separator: "\n")
        case .null, nil: return ""
        default: throw Refusal(message: "\(parameter).content must be a string or an array of parts", parameter: parameter)
        }
    }

    /// A user message's parts: text, and images as data URLs or https URLs (the backend fetches those).
    private static func userContent(_ content: JSONValue?, parameter: String) throws(Refusal) -> [JSONValue] {
        if case .string(let text) = content { return [.object(["type": .string("input_text"), "text": .string(text)])] }
        guard let parts = content?.arrayValue else { throw Refusal(message: "\(parameter).content must be a string or an array of parts", parameter: parameter) }
        var translated: [JSONValue] = []
        for part in parts {
            switch part["type"]?.stringValue {
            case "text":
                translated.append(.object(["type": .string("input_text"), "text": .string(part["text"]?.stringValue ?? "")]))
            case "image_url":
                guard let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue,
                      url.hasPrefix("data:image/") || url.hasPrefix("https://") else {
                    throw Refusal(message: "\(parameter): an image must be a data:image/… URL or an https URL", parameter: parameter)
                }
                var image: [String: JSONValue] = ["type": .string("input_image"), "image_url": .string(url)]
                if let detail = part["image_url"]?["detail"] { image["detail"] = detail }
                translated.append(.object(image))
            default:
                throw Refusal(message: "\(parameter): content parts must be text or image_url (got \(part["type"]?.stringValue ?? "none"))", parameter: parameter)
            }
        }
        return translated
    }

    private static func tools(_ tools: JSONValue) throws(Refusal) -> JSONValue {
        guard let list = tools.arrayValue else { throw Refusal(message: "tools must be an array", parameter: "tools") }
        var translated: [JSONValue] = []
        for (index, tool) in list.enumerated() {
            guard tool["type"]?.stringValue == "function", let function = tool["function"], let name = function["name"]?.stringValue else {
                throw Refusal(message: "tools[\(index)]: only function tools are supported", parameter: "tools")
            }
            var entry: [String: JSONValue] = ["type": .string("function"), "name": .string(name),
                                              "parameters": function["parameters"] ?? .object(["type": .string("object"), "properties": .object([:])])]
            if let description = function["description"] { entry["description"] = description }
            if let strict = function["strict"] { entry["strict"] = strict }
            translated.append(.object(entry))
        }
        return .array(translated)
    }

    private static func toolChoice(_ choice: JSONValue) throws(Refusal) -> JSONValue {
        if let mode = choice.stringValue, ["auto", "none", "required"].contains(mode) { return choice }
        guard choice["type"]?.stringValue == "function", let name = choice["function"]?["name"]?.stringValue else {
            throw Refusal(message: "tool_choice must be auto, none, required or a function", parameter: "tool_choice")
        }
        return .object(["type": .string("function"), "name": .string(name)])
    }

    private static func responseFormat(_ format: JSONValue) throws(Refusal) -> JSONValue? {
        switch format["type"]?.stringValue {
        case "text": return nil
        case "json_object": return .object(["type": .string("json_object")])
        case "json_schema":
            guard let schema = format["json_schema"], let name = schema["name"]?.stringValue, let body = schema["schema"] else {
                throw Refusal(message: "response_format.json_schema needs a name and a schema", parameter: "response_format")
            }
            var translated: [String: JSONValue] = ["type": .string("json_schema"), "name": .string(name), "schema": body]
            if let strict = schema["strict"] { translated["strict"] = strict }
            return .object(translated)
        default:
            throw Refusal(message: "response_format.type must be text, json_object or json_schema", parameter: "response_format")
        }
    }

    /// A stable digest of the opening messages (FNV-1a of their JSON): the same conversation
    /// gives the same key on every request.
    private static func digest(_ messages: ArraySlice<JSONValue>) -> String {
        String(FNV1a.hash(JSONValue.array(Array(messages)).serialized), radix: 16)
    }
}
