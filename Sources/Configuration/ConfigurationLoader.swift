public import Foundation
import Yams

/// Reads, expands, decodes and validates configuration files.
public struct ConfigurationLoader: Sendable {
    /// Files larger than this are refused before parsing: no sane configuration is this big,
    /// and a bounded input keeps a hostile or mistaken file from exhausting memory.
    public static let maximumFileSize = 1 << 20
    /// The label used in messages about the built-in configuration.
    public static let embeddedDefaultSource = "<embedded default>"

    /// Used for `${VAR}` references and for locating `~/.codex/auth.json`.
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads the file at `path`; messages name it as given.
    public func load(contentsOf path: String) throws(ConfigurationError) -> CodexpoolConfiguration {
        let text = try readText(path)
        let directory = (path as NSString).deletingLastPathComponent
        let baseDirectory = directory.isEmpty ? FileManager.default.currentDirectoryPath
            : (directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory)
        return try load(yaml: text, source: path, baseDirectory: baseDirectory)
    }

    /// Loads configuration text; relative paths in it are resolved against `baseDirectory`.
    public func load(yaml: String, source: String, baseDirectory: String) throws(ConfigurationError) -> CodexpoolConfiguration {
        let reader = ConfigurationReader(source: source, environment: environment)
        let document: Node?
        do {
            document = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationError(issues: [YAMLSyntaxIssue.issue(for: error, source: source)])
        }
        if let document, NodeBudget.exceeds(document, limit: 100_000) {
            throw ConfigurationError(issues: [ConfigurationIssue(
                source: source, line: nil, column: nil, path: "",
                message: "the document expands to more than 100000 values (aliases nested too deep?)")])
        }
        let decoder = ConfigurationDecoder(
            reader: reader, paths: ConfigurationPathResolver(baseDirectory: baseDirectory, environment: environment))
        let configuration = decoder.decode(document)
        guard let configuration, reader.issues.isEmpty else {
            throw ConfigurationError(issues: reader.issues.enumerated().sorted { lhs, rhs in
                let left = (lhs.element.line ?? 0, lhs.element.column ?? 0, lhs.offset)
                let right = (rhs.element.line ?? 0, rhs.element.column ?? 0, rhs.offset)
                return left < right
            }.map(\.element))
        }
        return configuration
    }

    /// What `codexpool serve` runs with no file: one local credential from the Codex CLI's own
    /// `auth.json`, served without authentication on 127.0.0.1:8080.
    public func embeddedDefault() -> CodexpoolConfiguration {
        do {
            return try load(yaml: "{}", source: Self.embeddedDefaultSource, baseDirectory: FileManager.default.currentDirectoryPath)
        } catch {
            // "{}" has no fields that can be wrong and no environment references.
            preconditionFailure("the embedded default configuration is invalid: \(error)")
        }
    }

    private func readText(_ path: String) throws(ConfigurationError) -> String {
        func failure(_ message: String) -> ConfigurationError {
            ConfigurationError(issues: [ConfigurationIssue(source: path, line: nil, column: nil, path: "", message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure("no such file")
        }
        guard !isDirectory.boolValue else { throw failure("is a directory, not a configuration file") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw failure("cannot be read (permission denied?)") }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: Self.maximumFileSize + 1) ?? Data()
        } catch {
            throw failure("cannot be read: \(error.localizedDescription)")
        }
        guard data.count <= Self.maximumFileSize else { throw failure("is larger than 1 MiB; is this really a configuration file?") }
        guard !data.contains(0), let text = String(data: data, encoding: .utf8) else {
            throw failure("is not UTF-8 text")
        }
        return text
    }
}

/// Counts the nodes of a composed document, stopping early, so alias bombs are refused cheaply.
enum NodeBudget {
    static func exceeds(_ root: Node, limit: Int) -> Bool {
        var remaining = limit
        var stack = [root]
        while let node = stack.popLast() {
            remaining -= 1
            if remaining < 0 { return true }
            switch node {
            case .mapping(let mapping):
                for (key, value) in mapping {
                    stack.append(key)
                    stack.append(value)
                }
            case .sequence(let sequence):
                stack.append(contentsOf: sequence)
            case .scalar, .alias:
                break
            }
        }
        return false
    }
}

/// Turns a YAML parser error into one positioned issue with the parser's own words.
enum YAMLSyntaxIssue {
    static func issue(for error: any Error, source: String) -> ConfigurationIssue {
        guard let yamlError = error as? YamlError else {
            return ConfigurationIssue(source: source, line: nil, column: nil, path: "", message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) (line \($0.mark.line)): " } ?? ""
            return ConfigurationIssue(source: source, line: mark.line, column: mark.column, path: "",
                                      message: "invalid YAML: \(detail)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().joined(separator: ", ")
            return ConfigurationIssue(source: source, line: context.mark.line, column: context.mark.column, path: "",
                                      message: "duplicate key \(keys) in one mapping; each key may appear once")
        case .reader(let problem, _, _, _):
            return ConfigurationIssue(source: source, line: nil, column: nil, path: "", message: "invalid YAML text: \(problem)")
        default:
            return ConfigurationIssue(source: source, line: nil, column: nil, path: "", message: "invalid YAML: \(yamlError)")
        }
    }
}
