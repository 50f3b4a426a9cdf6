import Foundation
import Logging
import Synchronization

/// Log lines on standard error, in `StreamLogHandler`'s format
/// (`<time> <level> <label>: <key=value …> [<source>] <message>`), with the metadata formatted
/// when a line is written rather than whenever it changes: the server sets a request's id and
/// user on its logger for every request, and almost none of them log anything.
struct ServerLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadataProvider: Logger.MetadataProvider?
    private let label: String
    /// The two keys set for every request, kept out of the dictionary (filling one for each
    /// request cost an allocation).
    private var request: Logger.Metadata.Value?
    private var user: Logger.Metadata.Value?
    private var others: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    var metadata: Logger.Metadata {
        get {
            var all = others
            if let request { all["request"] = request }
            if let user { all["user"] = user }
            return all
        }
        set {
            request = newValue["request"]
            user = newValue["user"]
            others = newValue.filter { $0.key != "request" && $0.key != "user" }
        }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get {
            switch key {
            case "request": request
            case "user": user
            default: others[key]
            }
        }
        set {
            switch key {
            case "request": request = newValue
            case "user": user = newValue
            default: others[key] = newValue
            }
        }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata, !explicit.isEmpty { merged.merge(explicit) { _, new in new } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let pretty = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(Self.timestamp()) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(pretty) [\(event.source)] \(event.message)\n"
        Self.output.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// One writer at a time, so lines from several threads never interleave.
    private static let output = Mutex(())

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "<unknown>" }
        var buffer = [Int8](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
