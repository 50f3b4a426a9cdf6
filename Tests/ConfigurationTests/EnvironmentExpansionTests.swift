import Configuration
import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct EnvironmentExpansionTests {
    let yaml = """
        credentials:
          - tag: peer
            type: external
            reverse: true
            token: ${PEER_TOKEN}
        users:
          - name: laptop
            token: prefix-${LAPTOP_TOKEN:-fallback}-$${literal}-$HOME
            credential: peer
        """

    @Test func expandsReferencesInValues() throws {
        let configuration = try loadConfiguration(yaml, environment: ["PEER_TOKEN": "peer-secret", "LAPTOP_TOKEN": "lt"])
        guard case .external(let peer) = configuration.credentials[0] else {
            Issue.record("expected an external credential")
            return
        }
        #expect(peer.token == Secret("peer-secret"))
        #expect(configuration.users[0].token.value == "prefix-lt-${literal}-$HOME")
    }

    @Test func fallbackAppliesWhenUnsetOrEmpty() throws {
        let unset = try loadConfiguration(yaml, environment: ["PEER_TOKEN": "p"])
        #expect(unset.users[0].token.value == "prefix-fallback-${literal}-$HOME")
        let empty = try loadConfiguration(yaml, environment: ["PEER_TOKEN": "p", "LAPTOP_TOKEN": ""])
        #expect(empty.users[0].token.value == "prefix-fallback-${literal}-$HOME")
    }

    @Test func missingVariableIsAnErrorAtItsPosition() {
        #expect(configurationIssues(yaml) == [
            "test.yaml:5:5: credentials[0].token: environment variable PEER_TOKEN is not set (use ${PEER_TOKEN:-fallback} for a default)",
        ])
    }

    @Test func malformedReferencesAreErrors() {
        #expect(configurationIssues("listen: ${PORT\n") == [
            "test.yaml:1:1: listen: unterminated ${ reference (write $${ for a literal ${)",
        ])
        #expect(configurationIssues("listen: ${1PORT}\n") == [
            #"test.yaml:1:1: listen: "1PORT" is not a valid environment variable name"#,
        ])
    }

    @Test func aValueCannotInjectStructure() throws {
        let configuration = try loadConfiguration(
            "listen: 127.0.0.1:${PORT}\nusers:\n  - name: u\n    token: ${T}\n",
            environment: ["PORT": "9000", "T": "x\ncredential: other\nadmin: true"])
        #expect(configuration.listen == ListenAddress(host: "127.0.0.1", port: 9000))
        #expect(configuration.users[0].token.value == "x\ncredential: other\nadmin: true")
        #expect(configuration.users[0].credential == "default")
    }
}
