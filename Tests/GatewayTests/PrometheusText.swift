import Foundation
import NIOHTTP1
import Testing
import UpstreamHTTP

/// A strict reader of the Prometheus text exposition format (version 0.0.4), enough to check
/// that `/metrics` is well formed and to look values up: every sample line parses, belongs to a
/// family declared by a `# TYPE` line before it, and has a numeric value.
struct PrometheusText {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct FormatError: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    private(set) var samples: [Sample] = []
    private(set) var types: [String: String] = [:]

    init(_ text: String) throws {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3)
                if parts.count >= 3, parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])) else {
                        throw FormatError(line: number, reason: "bad TYPE line \(line)")
                    }
                    guard types[String(parts[2])] == nil else { throw FormatError(line: number, reason: "second TYPE line for \(parts[2])") }
                    types[String(parts[2])] = String(parts[3])
                }
                continue
            }
            let sample = try Self.parseSample(Substring(line), line: number)
            guard types[Self.family(of: sample.name, types: types)] != nil else {
                throw FormatError(line: number, reason: "sample \(sample.name) has no TYPE line before it")
            }
            samples.append(sample)
        }
    }

    /// The value of the one sample with this name whose labels include `labels`; nil if none.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }

    private static func family(of name: String, types: [String: String]) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" || types[base] == "summary" { return base }
        }
        return name
    }

    private static func parseSample(_ line: Substring, line number: Int) throws -> Sample {
        var rest = line[...]
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard let first = name.first, !first.isNumber else { throw FormatError(line: number, reason: "no metric name in \(line)") }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let key = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                guard !key.isEmpty else { throw FormatError(line: number, reason: "bad label name in \(line)") }
                rest = rest.dropFirst(key.count)
                guard rest.hasPrefix("=\"") else { throw FormatError(line: number, reason: "expected =\" after \(key)") }
                rest = rest.dropFirst(2)
                var value = ""
                while true {
                    guard let character = rest.popFirst() else { throw FormatError(line: number, reason: "unterminated label value") }
                    if character == "\"" { break }
                    if character == "\\" {
                        switch rest.popFirst() {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw FormatError(line: number, reason: "bad escape in label value")
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard labels.updateValue(value, forKey: String(key)) == nil else { throw FormatError(line: number, reason: "label \(key) twice") }
                if rest.first == "," { rest = rest.dropFirst() }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw FormatError(line: number, reason: "expected a space before the value in \(line)") }
        let valueText = rest.dropFirst().split(separator: " ").first.map(String.init) ?? ""
        let value: Double? = switch valueText {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(valueText)
        }
        guard let value else { throw FormatError(line: number, reason: "value \(valueText) is not a number") }
        return Sample(name: String(name), labels: labels, value: value)
    }
}

extension GatewayTestBed {
    /// Scrapes until `ready` holds (the state it waits for is reached asynchronously, after a close);
    /// gives up after about 5 s.
    func waitForScrape(until ready: (PrometheusText) -> Bool) async throws -> PrometheusText {
        for _ in 0..<1000 {
            let response = try await request(.GET, "/metrics")
            let text = try PrometheusText(response.text)
            if ready(text) { return text }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("metrics never reached the expected state")
        return try PrometheusText(try await request(.GET, "/metrics").text)
    }
}
