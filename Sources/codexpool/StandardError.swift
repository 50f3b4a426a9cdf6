import Foundation

/// Writes whole lines to standard error, for messages meant for the operator.
enum StandardError {
    static func write(_ text: String) {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// Writes to standard output at once (no stdio buffering), for screens that must show now.
enum StandardOutput {
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
