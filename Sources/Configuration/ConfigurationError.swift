/// One problem found in a configuration file, located by file, line, column and key path.
///
/// Rendered as `balancer.yaml:14:7: credentials[2].strategy: unknown balancer strategy …`.
/// Messages never contain secret values (tokens), only where they are.
public struct ConfigurationIssue: Hashable, Sendable, CustomStringConvertible {
    /// The file name as the operator gave it, or a label such as `<embedded default>`.
    public var source: String
    /// 1-based line and column; nil when the problem has no position (e.g. an unreadable file).
    public var line: Int?
    public var column: Int?
    /// The key path, e.g. `credentials[2].strategy`; empty for document-level problems.
    public var path: String
    public var message: String

    public init(source: String, line: Int?, column: Int?, path: String, message: String) {
        self.source = source
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = source
        if let line, let column { text += ":\(line):\(column)" }
        text += ": "
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}

/// Every problem found in one configuration file, in file order.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var issues: [ConfigurationIssue]

    public init(issues: [ConfigurationIssue]) {
        self.issues = issues
    }

    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}
