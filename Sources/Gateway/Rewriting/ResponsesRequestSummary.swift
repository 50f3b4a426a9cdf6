import PoolCore

/// The few top-level fields of a Responses request the gateway reads: its type, model and
/// warm-up flag, what the assignment log line shows, and the continuation state it names. Read
/// in one pass without decoding the rest: a Codex request carries the whole conversation, often
/// megabytes, on every turn.
struct ResponsesRequestSummary: Equatable {
    var type: String?
    var model: String?
    /// `false` marks a warm-up (no answer is generated).
    var generate: Bool?
    var reasoningEffort: String?
    var serviceTier: String?
    /// The response this one continues.
    var previousResponseID: String?
    /// `client_metadata["x-codex-turn-state"]`: where a WebSocket request carries its turn's state.
    var metadataTurnState: String?

    init() {}

    /// Nil when the bytes are not a JSON object.
    init?(json: UnsafeRawBufferPointer) {
        var scanner = JSONFieldScanner(bytes: json)
        var read: ResponsesRequestSummary?
        let wellFormed = scanner.object(into: &read, from: ResponsesRequestSummary()) { scanner, summary, key in
            switch key {
            case "type": summary.type = scanner.string()
            case "model": summary.model = scanner.string()
            case "generate": summary.generate = scanner.boolean()
            case "service_tier": summary.serviceTier = scanner.string()
            case "reasoning_effort":
                // Read whether or not it is used: the scanner must move past it.
                let effort = scanner.string()
                if summary.reasoningEffort == nil { summary.reasoningEffort = effort }
            case "reasoning":
                // `reasoning.effort` wins over the older top-level `reasoning_effort`.
                guard let effort = Self.string(in: &scanner, member: "effort") else { return false }
                if let effort { summary.reasoningEffort = effort }
            case "previous_response_id":
                let id = scanner.string()
                if summary.previousResponseID == nil { summary.previousResponseID = id }
            case "client_metadata":
                guard let turnState = Self.string(in: &scanner, member: ContinuationScan.turnStateHeaderName) else { return false }
                if summary.metadataTurnState == nil { summary.metadataTurnState = turnState }
            default: return scanner.skipValue()
            }
            return true
        }
        guard wellFormed, let read else { return nil }
        self = read
    }

    /// The string `member` of the object at the scanner (the first, if named twice): nil when
    /// the object is malformed; `.some(nil)` when it has no such string or is not an object.
    private static func string(in scanner: inout JSONFieldScanner, member: StaticString) -> String?? {
        var found: String??
        let read = scanner.object(into: &found, from: nil) { scanner, value, key in
            guard key == member, value == nil else { return scanner.skipValue() }
            value = scanner.string()
            return true
        }
        return read ? .some(found ?? nil) : nil
    }

    init?(json bytes: some Collection<UInt8>) {
        guard let summary = bytes.withContiguousBytes({ ResponsesRequestSummary(json: $0) }) else { return nil }
        self = summary
    }
}
