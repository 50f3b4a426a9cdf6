import Yams

/// One value in the composed YAML tree, with where it is and how to name it in errors.
struct ConfigurationValue {
    let node: Node
    let path: ConfigurationPath
    /// Where errors about this value point: the key for mapping entries, the item itself in sequences.
    let mark: Mark?
}

/// Walks a composed YAML tree strictly and collects every problem instead of stopping at the first.
///
/// Each accessor returns nil after recording an issue, so decoding code reads as a plain list of
/// fields and all errors of a file are reported in one run of `check-config`.
final class ConfigurationReader {
    let source: String
    private let environment: [String: String]
    private(set) var issues: [ConfigurationIssue] = []

    init(source: String, environment: [String: String]) {
        self.source = source
        self.environment = environment
    }

    // MARK: Recording problems

    func report(_ message: String, at mark: Mark?, path: ConfigurationPath) {
        issues.append(ConfigurationIssue(
            source: source, line: mark?.line, column: mark?.column, path: path.description, message: message
        ))
    }

    func report(_ message: String, at value: ConfigurationValue) {
        report(message, at: value.mark, path: value.path)
    }

    // MARK: Structure

    /// The entries of a mapping, after rejecting keys outside `allowedKeys`.
    ///
    /// `context` names what the mapping is ("a default credential") for unknown-key messages.
    func mapping(_ value: ConfigurationValue, allowedKeys: [String], context: String) -> [String: ConfigurationValue]? {
        if isNull(value.node) { return [:] }
        guard case .mapping(let mapping) = value.node else {
            report("expected a mapping (key: value pairs) for \(context), got \(describe(value.node))", at: value)
            return nil
        }
        var entries: [String: ConfigurationValue] = [:]
        for (keyNode, child) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                report("mapping keys must be plain names", at: keyNode.mark, path: value.path)
                continue
            }
            let key = keyScalar.string
            let childPath = value.path.appending(key: key)
            guard allowedKeys.contains(key) else {
                report(unknownKeyMessage(key, allowedKeys: allowedKeys, context: context), at: keyNode.mark, path: childPath)
                continue
            }
            entries[key] = ConfigurationValue(node: child, path: childPath, mark: keyNode.mark ?? child.mark)
        }
        return entries
    }

    /// The items of a sequence; nil (after a report) for anything else.
    func sequence(_ value: ConfigurationValue, of itemName: String) -> [ConfigurationValue]? {
        if isNull(value.node) { return [] }
        guard case .sequence(let sequence) = value.node else {
            report("expected a list of \(itemName), got \(describe(value.node))", at: value)
            return nil
        }
        return sequence.enumerated().map { index, item in
            ConfigurationValue(node: item, path: value.path.appending(index: index), mark: item.mark)
        }
    }

    // MARK: Scalars

    /// A string value with `${VAR}` references expanded; nil when absent (null) or invalid.
    func string(_ value: ConfigurationValue?) -> String? {
        guard let value, !isNull(value.node) else { return nil }
        guard case .scalar(let scalar) = value.node else {
            report("expected a single value, got \(describe(value.node))", at: value)
            return nil
        }
        switch EnvironmentExpansion.expand(scalar.string, environment: environment) {
        case .success(let expanded):
            return expanded
        case .failure(let failure):
            report(failure.message, at: value)
            return nil
        }
    }

    /// A string that must be present and non-empty.
    func requiredString(_ value: ConfigurationValue?, missing message: String, at owner: ConfigurationValue, key: String) -> String? {
        guard let value, !isNull(value.node) else {
            report(message, at: owner.mark, path: owner.path.appending(key: key))
            return nil
        }
        guard let text = string(value) else { return nil }
        if text.isEmpty {
            report("must not be empty", at: value)
            return nil
        }
        return text
    }

    func bool(_ value: ConfigurationValue?) -> Bool? {
        guard let text = string(value), let value else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default:
            report("expected true or false, got \(quoted(text))", at: value)
            return nil
        }
    }

    /// A whole number within `range`.
    func integer(_ value: ConfigurationValue?, in range: ClosedRange<Int>) -> Int? {
        guard let text = string(value), let value else { return nil }
        guard let number = Int(text) else {
            report("expected a whole number from \(range.lowerBound) to \(range.upperBound), got \(quoted(text))", at: value)
            return nil
        }
        if number > range.upperBound {
            report("must be at most \(range.upperBound), got \(number)", at: value)
            return nil
        }
        if number < range.lowerBound {
            report("must be at least \(range.lowerBound), got \(number)", at: value)
            return nil
        }
        return number
    }

    /// A size in bytes (`32MiB`, `64KiB`, a plain number) within `range`.
    func byteSize(_ value: ConfigurationValue?, in range: ClosedRange<Int>) -> Int? {
        guard let text = string(value), let value else { return nil }
        guard let bytes = ConfigurationQuantity.bytes(text) else {
            report("expected a size such as 32MiB, 64KiB or a number of bytes, got \(quoted(text))", at: value)
            return nil
        }
        guard range.contains(bytes) else {
            report("must be from \(range.lowerBound) to \(range.upperBound) bytes, got \(bytes)", at: value)
            return nil
        }
        return bytes
    }

    /// A duration (`15s`, `2m`, `500ms`, a plain number of seconds) within `range` seconds.
    func duration(_ value: ConfigurationValue?, in range: ClosedRange<Double>) -> Double? {
        guard let text = string(value), let value else { return nil }
        guard let seconds = ConfigurationQuantity.seconds(text) else {
            report("expected a duration such as 15s, 2m, 500ms or 30d, got \(quoted(text))", at: value)
            return nil
        }
        guard range.contains(seconds) else {
            report("must be from \(range.lowerBound) to \(range.upperBound) seconds, got \(seconds)", at: value)
            return nil
        }
        return seconds
    }

    /// A finite decimal number.
    func number(_ value: ConfigurationValue?) -> Double? {
        guard let text = string(value), let value else { return nil }
        guard let number = Double(text), number.isFinite else {
            report("expected a number, got \(quoted(text))", at: value)
            return nil
        }
        return number
    }

    /// One string or a list of strings (`credentials: a` is the same as `credentials: [a]`).
    func stringList(_ value: ConfigurationValue?) -> [(text: String, value: ConfigurationValue)]? {
        guard let value, !isNull(value.node) else { return nil }
        if case .sequence = value.node {
            guard let items = sequence(value, of: "values") else { return nil }
            var result: [(String, ConfigurationValue)] = []
            for item in items {
                if let text = string(item) { result.append((text, item)) }
            }
            return result
        }
        guard let text = string(value) else { return nil }
        return [(text, value)]
    }

    // MARK: Helpers

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func quoted(_ text: String) -> String {
        let shown = text.count > 60 ? String(text.prefix(57)) + "..." : text
        return "\"\(shown)\""
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "the value \(quoted(scalar.string))"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private func unknownKeyMessage(_ key: String, allowedKeys: [String], context: String) -> String {
        if let suggestion = closestKey(to: key, in: allowedKeys) {
            return "unknown key for \(context) (did you mean \(suggestion)?)"
        }
        return "unknown key for \(context) (expected one of: \(allowedKeys.joined(separator: ", ")))"
    }

    /// The allowed key within edit distance 2 of a likely typo, if any.
    private func closestKey(to key: String, in allowedKeys: [String]) -> String? {
        let candidates = allowedKeys.map { ($0, editDistance(key.lowercased(), $0)) }
        guard let best = candidates.min(by: { $0.1 < $1.1 }), best.1 <= 2, best.1 < key.count else { return nil }
        return best.0
    }

    private func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return previous[b.count]
    }
}
