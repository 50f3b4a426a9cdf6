import Foundation

/// One run of `wrk` (HTTP/1.1 keep-alive load, C): what it measured.
struct WrkResult {
    var requests: Int
    var seconds: Double
    var failures: Int
    var latencyP50: Double
    var latencyP99: Double

    var requestsPerSecond: Double { Double(requests) / seconds }
}

enum Wrk {
    /// `wrk -t1 -c<connections> -d<seconds>s --latency` posting the turn request to `url`.
    static func run(_ wrk: String, url: String, connections: Int, seconds: Int, script: String) throws -> WrkResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wrk)
        process.arguments = ["-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let parsed = parse(output) else {
            throw BenchmarkFailure("wrk failed on \(url): \(output)")
        }
        return parsed
    }

    /// The Lua script that makes wrk post `body` as JSON.
    static func script(body: String) -> String {
        """
        wrk.method = "POST"
        wrk.body = '\(body)'
        wrk.headers["Content-Type"] = "application/json"
        wrk.headers["Accept"] = "text/event-stream"
        """
    }

    static func parse(_ output: String) -> WrkResult? {
        var requests: Int?
        var seconds: Double?
        var failures = 0
        var latencies: [String: Double] = [:]
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if words.count >= 4, words[1] == "requests", words[2] == "in" {
                requests = Int(words[0])
                seconds = duration(String(words[3].dropLast()))
            } else if line.hasPrefix("Non-2xx or 3xx responses:"), let count = words.last.flatMap({ Int($0) }) {
                failures += count
            } else if line.hasPrefix("Socket errors:") {
                failures += line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +)
            } else if words.count == 2, words[0].hasSuffix("%"), let value = duration(String(words[1])) {
                latencies[String(words[0])] = value
            }
        }
        guard let requests, let seconds, seconds > 0 else { return nil }
        return WrkResult(requests: requests, seconds: seconds, failures: failures, latencyP50: latencies["50%"] ?? .nan, latencyP99: latencies["99%"] ?? .nan)
    }

    /// `812.00us`, `1.23ms`, `5.00s`, `2.5m` → seconds.
    static func duration(_ text: String) -> Double? {
        for (suffix, scale) in [("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return Double(text)
    }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
