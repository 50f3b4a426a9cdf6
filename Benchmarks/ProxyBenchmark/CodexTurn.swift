import Foundation

/// The fixed Codex turn the fast upstream answers with: what the backend streams for a short
/// answer (about 4 KB of text in 32 deltas), with usage in `response.completed` so that the
/// proxies' usage accounting runs as it does for real turns. As the backend does, the text's
/// `done` event, the finished item and the completed response each carry the whole text: the
/// long events a relay compresses (permessage-deflate) and reads usage from.
enum CodexTurn {
    static let deltaText = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 3)
    static let deltaCount = 32
    static let text = String(repeating: deltaText, count: deltaCount)

    /// The events, as one JSON object each; `rateLimits` adds the `codex.rate_limits` event a
    /// WebSocket turn starts with (over HTTP the same figures come as headers).
    static func events(rateLimits: Bool) -> [String] {
        let response = #""id":"resp_bench","object":"response","created_at":1796823000,"model":"gpt-5.5""#
        var events: [String] = []
        if rateLimits {
            events.append(#"{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"limit_reached":false,"#
                + #""primary":{"used_percent":10,"window_minutes":300,"reset_at":4102444800},"#
                + #""secondary":{"used_percent":10,"window_minutes":10080,"reset_at":4102444800}}}"#)
        }
        events.append(#"{"type":"response.created","response":{\#(response),"status":"in_progress"}}"#)
        events.append(#"{"type":"response.in_progress","response":{\#(response),"status":"in_progress"}}"#)
        events.append(#"{"type":"response.output_item.added","output_index":0,"item":{"id":"msg_bench","type":"message","role":"assistant","content":[]}}"#)
        events.append(#"{"type":"response.content_part.added","item_id":"msg_bench","output_index":0,"content_index":0,"part":{"type":"output_text","text":""}}"#)
        for _ in 0..<deltaCount {
            events.append(#"{"type":"response.output_text.delta","item_id":"msg_bench","output_index":0,"content_index":0,"delta":"\#(deltaText)"}"#)
        }
        let item = #"{"id":"msg_bench","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","#
            + #""annotations":[],"text":"\#(text)"}]}"#
        events.append(#"{"type":"response.output_text.done","item_id":"msg_bench","output_index":0,"content_index":0,"text":"\#(text)"}"#)
        events.append(#"{"type":"response.output_item.done","output_index":0,"item":\#(item)}"#)
        events.append(#"{"type":"response.completed","response":{\#(response),"status":"completed","output":[\#(item)],"usage":{"input_tokens":1200,"#
            + #""input_tokens_details":{"cached_tokens":1024},"output_tokens":400,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":1600}}}"#)
        return events
    }

    /// The HTTP answer's body: the events as Server-Sent Events.
    static var serverSentEvents: String {
        events(rateLimits: false).map { event in
            let type = event.split(separator: "\"", maxSplits: 4).dropFirst(3).first ?? "message"
            return "event: \(type)\ndata: \(event)\n\n"
        }.joined()
    }

    /// The WebSocket turn: one event per line, for the Go upstream.
    static var webSocketLines: String {
        events(rateLimits: true).joined(separator: "\n") + "\n"
    }

    /// What the usage API answers (`GET /backend-api/wham/usage`).
    static let usage = #"{"plan_type":"pro","rate_limit":{"allowed":true,"limit_reached":false,"#
        + #""primary_window":{"used_percent":10,"limit_window_seconds":18000,"reset_after_seconds":3600,"reset_at":4102444800},"#
        + #""secondary_window":{"used_percent":10,"limit_window_seconds":604800,"reset_after_seconds":86400,"reset_at":4102444800}}}"#

    static let requestBody = #"{"model":"gpt-5.5","stream":true,"store":false,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
    static let webSocketRequest = #"{"type":"response.create","model":"gpt-5.5","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
}
