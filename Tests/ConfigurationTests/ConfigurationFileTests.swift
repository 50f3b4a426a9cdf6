import Configuration
import Foundation
import Testing

/// Reading files: syntax errors, duplicate keys, unreadable or hostile files.
@Suite(.timeLimit(.minutes(1))) struct ConfigurationFileTests {
    @Test func syntaxErrorsCarryTheParsersPosition() {
        let issues = configurationIssues("listen: 127.0.0.1:8080\ncredentials:\n  - tag: a\n   type: balancer\n")
        #expect(issues == ["test.yaml:4:4: invalid YAML: while parsing a block collection (line 3): did not find expected '-' indicator"])
        #expect(configurationIssues("listen: a: b\n") == ["test.yaml:1:10: invalid YAML: mapping values are not allowed in this context"])
    }

    @Test func tabsAreASyntaxError() {
        let issues = configurationIssues("credentials:\n\t- tag: a\n")
        #expect(issues.count == 1)
        #expect(issues.first?.hasPrefix("test.yaml:2:1: invalid YAML:") == true)
    }

    @Test func duplicateKeysAreRejected() {
        #expect(configurationIssues("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n") == [
            "test.yaml:1:1: duplicate key listen in one mapping; each key may appear once",
        ])
    }

    @Test func aliasBombsAreRefusedCheaply() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            let references = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            yaml += "a\(level): &a\(level) [\(references)]\n"
        }
        #expect(configurationIssues(yaml) == ["test.yaml: the document expands to more than 100000 values (aliases nested too deep?)"])
    }

    @Test func unreadableFilesGetClearErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let loader = ConfigurationLoader(environment: [:])

        func message(_ path: String) -> String {
            do {
                _ = try loader.load(contentsOf: path)
                return "loaded"
            } catch {
                return error.description
            }
        }

        let missing = directory.appendingPathComponent("missing.yaml").path
        #expect(message(missing) == "\(missing): no such file")
        #expect(message(directory.path) == "\(directory.path): is a directory, not a configuration file")

        let binary = directory.appendingPathComponent("binary.yaml")
        try Data([0x6c, 0x69, 0x00, 0xff, 0xfe]).write(to: binary)
        #expect(message(binary.path) == "\(binary.path): is not UTF-8 text")

        let huge = directory.appendingPathComponent("huge.yaml")
        try Data(repeating: UInt8(ascii: "#"), count: ConfigurationLoader.maximumFileSize + 1).write(to: huge)
        #expect(message(huge.path) == "\(huge.path): is larger than 1 MiB; is this really a configuration file?")

        let valid = directory.appendingPathComponent("valid.yaml")
        try Data("credentials:\n  - tag: a\n    credential_path: a.json\n".utf8).write(to: valid)
        let configuration = try loader.load(contentsOf: valid.path)
        #expect(configuration.credentials == [.local(LocalCredentialConfiguration(tag: "a", credentialPath: directory.path + "/a.json"))])
    }

    @Test func errorsNeverContainTokens() {
        let yaml = """
            credentials:
              - tag: peer
                type: external
                reverse: true
                token: [sk-very-secret]
            users:
              - name: u
                token: sk-user-secret
              - name: v
                token: sk-user-secret
                credential: [nope]
            """
        let text = configurationIssues(yaml).joined(separator: "\n")
        #expect(!text.isEmpty)
        #expect(!text.contains("sk-"))
    }
}
