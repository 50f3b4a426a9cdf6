import Configuration
import Testing

/// `storage:` — where history lives and for how long.
@Suite(.timeLimit(.minutes(1))) struct StorageConfigurationTests {
    @Test func historyIsOnByDefaultUnderTheStateFolder() throws {
        let plain = try loadConfiguration("listen: 127.0.0.1:8080\n", environment: ["HOME": "/home/ann"])
        #expect(plain.storage == StorageConfiguration(enabled: true, path: "/home/ann/.local/state/codexpool/codexpool.sqlite3"))
        let xdg = try loadConfiguration("listen: 127.0.0.1:8080\n", environment: ["HOME": "/home/ann", "XDG_STATE_HOME": "/var/state"])
        #expect(xdg.storage.path == "/var/state/codexpool/codexpool.sqlite3")
    }

    @Test func pathRetentionAndSwitchAreRead() throws {
        let configuration = try loadConfiguration("""
            storage:
              path: history/pool.sqlite3
              retention:
                requests: 30d
                detail: 12h
                summary: 90d
            """, environment: ["HOME": "/home/ann"])
        #expect(configuration.storage.enabled)
        #expect(configuration.storage.path.hasSuffix("/history/pool.sqlite3"))
        #expect(configuration.storage.retention == StorageConfiguration.Retention(requests: 30 * 86_400, detail: 12 * 3600, summary: 90 * 86_400))
        #expect(try loadConfiguration("storage:\n  enabled: false\n").storage.enabled == false)
    }

    @Test func mistakesAreNamed() {
        #expect(configurationIssues("storage:\n  pth: x\n") == ["test.yaml:2:3: storage.pth: unknown key for storage (did you mean path?)"])
        #expect(configurationIssues("storage:\n  retention:\n    requests: forever\n")
            == ["test.yaml:3:5: storage.retention.requests: expected a duration such as 15s, 2m, 500ms or 30d, got \"forever\""])
    }
}

