import Foundation

/// How the simulated backend answers a Responses request that is not Codex's own turn (what
/// the chat-completions translation sends): it calls a function tool when asked to (the user
/// names the tool, or `tool_choice` requires one), answers with what a tool returned, writes
/// JSON that fits a `json_schema` format, and says how many images it was shown — each checked
/// the way the backend checks it.
struct SimulatedAPIAnswer {
    var toolCall: (name: String, arguments: String)?
    /// Replaces the account's reply.
    var reply: String?

    /// Why the backend would refuse the request (400), if it would.
    static func problem(in request: [String: Any]) -> String? {
        for item in request["input"] as? [[String: Any]] ?? [] {
            for part in item["content"] as? [[String: Any]] ?? [] where part["type"] as? String == "input_image" {
                guard let url = part["image_url"] as? String else { return "input_image needs an image_url" }
                if url.hasPrefix("https://") { continue }
                guard url.hasPrefix("data:image/"), let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64"),
                      Data(base64Encoded: String(url[url.index(after: comma)...])) != nil else {
                    return "Invalid image_url: expected a base64-encoded data URL or an https URL"
                }
            }
        }
        if let format = (request["text"] as? [String: Any])?["format"] as? [String: Any], format["type"] as? String == "json_schema",
           format["schema"] as? [String: Any] == nil || format["name"] as? String == nil {
            return "text.format json_schema needs a name and a schema"
        }
        return nil
    }

    /// The account's own answer, unchanged.
    init() {}

    init(request: [String: Any], accountReply: String) {
        let input = request["input"] as? [[String: Any]] ?? []
        let tools = (request["tools"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "function" }
        if let output = input.last, output["type"] as? String == "function_call_output" {
            reply = "The tool returned: \(output["output"] as? String ?? "")"
        } else if let tool = Self.toolToCall(tools, choice: request["tool_choice"], lastUserText: Self.lastUserText(input)),
                  let name = tool["name"] as? String {
            toolCall = (name, SimulatorJSON.string(Self.example(of: tool["parameters"] as? [String: Any] ?? [:]) as? [String: Any] ?? [:]))
            return
        }
        let format = (request["text"] as? [String: Any])?["format"] as? [String: Any]
        switch format?["type"] as? String {
        case "json_schema":
            reply = SimulatorJSON.string(Self.example(of: format?["schema"] as? [String: Any] ?? [:]) as? [String: Any] ?? [:])
        case "json_object":
            reply = SimulatorJSON.string(["answer": reply ?? accountReply])
        default:
            let images = input.reduce(0) { count, item in
                count + (item["content"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "input_image" }.count
            }
            if images > 0 { reply = "I see \(images) image\(images == 1 ? "" : "s"). " + (reply ?? accountReply) }
        }
    }

    private static func lastUserText(_ input: [[String: Any]]) -> String {
        guard let user = input.last(where: { $0["role"] as? String == "user" }) else { return "" }
        return (user["content"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }.joined(separator: " ")
    }

    /// The tool the model calls: the one `tool_choice` names, any when it is `required`, else one
    /// the user mentions by name.
    private static func toolToCall(_ tools: [[String: Any]], choice: Any?, lastUserText: String) -> [String: Any]? {
        if let choice = choice as? [String: Any], let name = choice["name"] as? String { return tools.first { $0["name"] as? String == name } }
        if choice as? String == "none" { return nil }
        if choice as? String == "required" { return tools.first }
        return tools.first { tool in (tool["name"] as? String).map { lastUserText.contains($0) } ?? false }
    }

    /// A value that fits the JSON schema: every property filled in by its type.
    static func example(of schema: [String: Any]) -> Any {
        if let values = schema["enum"] as? [Any], let first = values.first { return first }
        switch schema["type"] as? String {
        case "object":
            var object: [String: Any] = [:]
            for (name, property) in schema["properties"] as? [String: Any] ?? [:] {
                object[name] = example(of: property as? [String: Any] ?? [:])
            }
            return object
        case "array": return [example(of: schema["items"] as? [String: Any] ?? ["type": "string"])]
        case "integer": return 42
        case "number": return 21.5
        case "boolean": return true
        case "null": return NSNull()
        default: return "example"
        }
    }
}
