import PoolCore

extension GatewayRuntime {
    /// "assigned credential T[ for session S][ by user U][, model=M][, think=E][, fast]" (§7.3 step 7).
    static func assignmentLine(tag: String, sessionID: String?, user: AuthenticatedUser, request: ResponsesRequestSummary?) -> String {
        var line = "assigned credential \(tag)"
        if let sessionID { line += " for session \(sessionID)" }
        if !user.name.isEmpty { line += " by user \(user.name)" }
        if let model = request?.model { line += ", model=\(model)" }
        if let effort = request?.reasoningEffort { line += ", think=\(effort)" }
        if request?.serviceTier == "priority" { line += ", fast" }
        return line
    }
}
