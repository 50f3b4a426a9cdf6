import Foundation

/// The events the backend sends for one `response.create` (codex-client.md §3.1–3.2), as JSON
/// objects; SSE wraps each in `event:`/`data:` lines, WebSocket sends each as a text message.
struct SimulatedTurn {
    var responseID: String
    var model: String
    var account: SimulatedAccount
    var isWarmUp: Bool
    var createdAt: Int
    /// Ask for this command instead of replying (the turn's first request, with a tool command).
    var callsTool: String?
    /// Call this function tool instead of replying (a chat-completions client's tool).
    var functionCall: (name: String, arguments: String)?

    /// Every event of the answer, `response.completed` last.
    func events() -> [[String: Any]] {
        var events: [[String: Any]] = [
            ["type": "response.created", "response": response(status: "in_progress", output: [], usage: nil)],
            ["type": "response.in_progress", "response": response(status: "in_progress", output: [], usage: nil)],
        ]
        guard !isWarmUp else {
            events.append(["type": "response.completed", "response": response(status: "completed", output: [], usage: usage(input: 0, output: 0))])
            return numbered(events)
        }
        var index = 0
        var output: [[String: Any]] = []
        if account.reasons {
            // Encrypted with this account's key, as far as anyone else can tell.
            let reasoning: [String: Any] = ["id": "rs_\(responseID.dropFirst(5))", "type": "reasoning", "summary": [Any](),
                                            "encrypted_content": Self.encryptedContent(account: account.accountID, responseID: responseID)]
            events.append(["type": "response.output_item.done", "output_index": index, "item": reasoning])
            output.append(reasoning)
            index += 1
        }
        if let command = callsTool {
            let call: [String: Any] = ["id": "fc_\(responseID.dropFirst(5))", "type": "function_call", "status": "completed",
                                       "call_id": "call_\(responseID.dropFirst(5))", "name": "exec_command",
                                       "arguments": SimulatorJSON.string(["cmd": command])]
            events.append(["type": "response.output_item.done", "output_index": index, "item": call])
            output.append(call)
            events.append(["type": "response.completed",
                           "response": response(status: "completed", output: output, usage: usage(input: account.inputTokens, output: account.outputTokens))])
            return numbered(events)
        }
        if let (name, arguments) = functionCall {
            // As the backend streams a call: added empty, the arguments as a delta, then done.
            let id = "fc_\(responseID.dropFirst(5))", callID = "call_\(responseID.dropFirst(5))"
            events.append(["type": "response.output_item.added", "output_index": index,
                           "item": ["id": id, "type": "function_call", "status": "in_progress", "call_id": callID, "name": name, "arguments": ""]])
            events.append(["type": "response.function_call_arguments.delta", "item_id": id, "output_index": index, "delta": arguments])
            events.append(["type": "response.function_call_arguments.done", "item_id": id, "output_index": index, "arguments": arguments])
            let call: [String: Any] = ["id": id, "type": "function_call", "status": "completed", "call_id": callID, "name": name, "arguments": arguments]
            events.append(["type": "response.output_item.done", "output_index": index, "item": call])
            output.append(call)
            events.append(["type": "response.completed",
                           "response": response(status: "completed", output: output, usage: usage(input: account.inputTokens, output: account.outputTokens))])
            return numbered(events)
        }
        let itemID = "msg_\(responseID.dropFirst(5))"
        events.append(["type": "response.output_item.added", "output_index": index,
                       "item": ["id": itemID, "type": "message", "status": "in_progress", "role": "assistant", "content": [Any]()]])
        events.append(["type": "response.content_part.added", "item_id": itemID, "output_index": index, "content_index": 0,
                       "part": ["type": "output_text", "text": "", "annotations": [Any]()]])
        for piece in pieces() {
            events.append(["type": "response.output_text.delta", "item_id": itemID, "output_index": index, "content_index": 0, "delta": piece])
        }
        let text = account.reply
        events.append(["type": "response.output_text.done", "item_id": itemID, "output_index": index, "content_index": 0, "text": text])
        let part: [String: Any] = ["type": "output_text", "text": text, "annotations": [Any]()]
        events.append(["type": "response.content_part.done", "item_id": itemID, "output_index": index, "content_index": 0, "part": part])
        let item: [String: Any] = ["id": itemID, "type": "message", "status": "completed", "role": "assistant", "content": [part]]
        events.append(["type": "response.output_item.done", "output_index": index, "item": item])
        output.append(item)
        if account.behavior == .failMidAnswer {
            var failed = response(status: "failed", output: output, usage: usage(input: account.inputTokens, output: account.outputTokens))
            failed["error"] = ["code": "server_error", "message": "The model failed to finish the answer (simulated)."]
            events.append(["type": "response.failed", "response": failed])
            return numbered(events)
        }
        events.append(["type": "response.completed",
                       "response": response(status: "completed", output: output, usage: usage(input: account.inputTokens, output: account.outputTokens))])
        return numbered(events)
    }

    /// What an account's encrypted reasoning looks like: opaque, but telling whose it is.
    /// (The response id stays readable: rendered answers are templates with the id filled in.)
    static func encryptedContent(account: String, responseID: String) -> String {
        "gAAAA" + Data(account.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "") + "." + responseID
    }

    /// The account an encrypted item came from; nil for one the simulator did not make.
    static func account(ofEncryptedContent content: String) -> String? {
        guard content.hasPrefix("gAAAA"), let encoded = content.dropFirst(5).split(separator: ".").first else { return nil }
        let padded = String(encoded) + String(repeating: "=", count: (4 - encoded.count % 4) % 4)
        return Data(base64Encoded: padded).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `codex.rate_limits` as the backend sends it before each answer (§3.4).
    static func rateLimitsEvent(_ limits: SimulatedRateLimits, now: Int) -> [String: Any] {
        var windows: [String: Any] = [:]
        let slots: [(String, SimulatedRateLimits.Window)] = if let fiveHour = limits.fiveHour {
            [("primary", fiveHour), ("secondary", limits.weekly)]
        } else {
            [("primary", limits.weekly)]
        }
        for (slot, window) in slots {
            windows[slot] = ["used_percent": window.usedPercent, "window_minutes": window.windowMinutes,
                             "reset_after_seconds": max(0, window.resetAt - now), "reset_at": window.resetAt]
        }
        windows["allowed"] = !limits.limitReached
        windows["limit_reached"] = limits.limitReached
        return ["type": "codex.rate_limits", "plan_type": limits.planType, "rate_limits": windows,
                "credits": ["has_credits": false, "unlimited": false, "balance": "0"],
                "metered_limit_name": "codex", "limit_name": "codex", "promo": NSNull()]
    }

    /// The `usage_limit_reached` error object of a 429 (§3.5).
    static func usageLimitError(_ limits: SimulatedRateLimits, now: Int) -> [String: Any] {
        let resetsAt = limits.exhaustedResetAt ?? (now + 3600)
        return ["type": "usage_limit_reached", "message": "The usage limit has been reached", "plan_type": limits.planType,
                "resets_at": resetsAt, "eligible_promo": NSNull(), "resets_in_seconds": max(0, resetsAt - now)]
    }

    private func pieces() -> [String] {
        let characters = Array(account.reply)
        let count = min(account.deltaCount, max(1, characters.count))
        let size = (characters.count + count - 1) / count
        return stride(from: 0, to: characters.count, by: max(1, size)).map { String(characters[$0 ..< min(characters.count, $0 + size)]) }
    }

    private func response(status: String, output: [Any], usage: Any?) -> [String: Any] {
        ["id": responseID, "object": "response", "created_at": createdAt, "status": status, "model": model,
         "output": output, "usage": usage ?? NSNull()]
    }

    private func usage(input: Int, output: Int) -> [String: Any] {
        ["input_tokens": input, "input_tokens_details": ["cached_tokens": account.cachedTokens], "output_tokens": output,
         "output_tokens_details": ["reasoning_tokens": 0], "total_tokens": input + output]
    }

    private func numbered(_ events: [[String: Any]]) -> [[String: Any]] {
        events.enumerated().map { index, event in event.merging(["sequence_number": index]) { old, _ in old } }
    }
}

enum SimulatorJSON {
    static func data(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes, .sortedKeys])) ?? Data("{}".utf8)
    }

    static func string(_ object: Any) -> String {
        String(decoding: data(object), as: UTF8.self)
    }

    static func object(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}

extension SimulatedRateLimits {
    /// When the exhausted window resets; nil when none is exhausted.
    var exhaustedResetAt: Int? {
        if weekly.usedPercent >= 100 { return weekly.resetAt }
        if let fiveHour, fiveHour.usedPercent >= 100 { return fiveHour.resetAt }
        return nil
    }

    mutating func addUse(_ percent: Double) {
        guard percent > 0 else { return }
        if var window = fiveHour {
            window.usedPercent = min(100, window.usedPercent + percent)
            fiveHour = window
        }
        weekly.usedPercent = min(100, weekly.usedPercent + percent)
    }
}
