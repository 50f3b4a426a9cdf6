import Foundation

/// What a real Codex CLI's model request looks like, as the simulator checks it when asked to
/// (`UpstreamSimulator.checkCodexRequests`): 0.147 sends `instructions`; 0.150 and later send
/// none and put the base instructions first in `input` as a developer message
/// (codex-wire-2026.md §1). Either way the body is a Responses request with `model`, `input`
/// and `store: false`, and warm-ups (`generate: false`) are allowed to carry no user input.
public enum CodexRequestShape: String, Sendable {
    /// `instructions` in the body (0.147).
    case instructionsField
    /// The `model.base_instructions` developer item first in `input` (0.163).
    case baseInstructionsItem

    /// The shape of `body`, or why it is not a Codex request.
    public static func classify(_ body: [String: Any]) -> Result<CodexRequestShape, Problem> {
        guard body["model"] is String else { return .failure(Problem("no model")) }
        guard let input = body["input"] as? [Any] else { return .failure(Problem("no input list")) }
        guard body["store"] as? Bool == false else { return .failure(Problem("store must be false")) }
        if let instructions = body["instructions"] as? String, !instructions.isEmpty { return .success(.instructionsField) }
        if let first = input.first as? [String: Any], isBaseInstructions(first) { return .success(.baseInstructionsItem) }
        // A turn after a warm-up sends only the new items, chained by previous_response_id.
        if body["previous_response_id"] is String { return .success(.baseInstructionsItem) }
        return .failure(Problem("neither instructions nor a base-instructions developer item"))
    }

    static func isBaseInstructions(_ item: [String: Any]) -> Bool {
        guard item["role"] as? String == "developer" else { return false }
        let metadata = item["internal_chat_message_metadata_passthrough"] as? [String: Any]
        let kinds = metadata?["content_item_kinds"] as? [String] ?? []
        return kinds.contains("model.base_instructions") || (item["id"] as? String)?.hasPrefix("msg_") == true
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
