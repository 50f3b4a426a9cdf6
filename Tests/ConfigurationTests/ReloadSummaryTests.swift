import Configuration
import Foundation
import Testing

/// The one-line summary of a reload and the keys that wait for a restart.
@Suite(.timeLimit(.minutes(1))) struct ReloadSummaryTests {
    static let base = """
        listen: 127.0.0.1:8080
        credentials:
          - {tag: a, credential_path: a.json}
          - {tag: b, credential_path: b.json}
          - {tag: pool, type: balancer, credentials: [a, b]}
        users:
          - {name: laptop, token: secret-1, credential: pool}
          - {name: phone, token: secret-2, credential: pool}
        """

    @Test func namesWhatChangedByTagAndNameNeverBySecret() throws {
        let old = try loadConfiguration(Self.base)
        let new = try loadConfiguration(Self.base
            .replacingOccurrences(of: "  - {tag: a, credential_path: a.json}\n", with: "")
            .replacingOccurrences(of: "credentials: [a, b]", with: "credentials: [b, c]")
            .replacingOccurrences(of: "  - {tag: pool", with: "  - {tag: c, credential_path: c.json}\n  - {tag: pool")
            .replacingOccurrences(of: "secret-2", with: "secret-3")
            .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:8443")
            + "\n  - {name: tablet, token: secret-4, credential: pool}\nlog: {level: debug}\nlimits: {max_body: 1MiB}\n")
        let change = ConfigurationChange(from: old, to: new)
        #expect(change.summary == "credentials +c −a ~pool; users +tablet ~phone; listen 127.0.0.1:8080 → 127.0.0.1:8443; "
            + "needs a restart (running value kept): limits, log")
        #expect(!change.summary.contains("secret"))
        #expect(change.effective.limits == old.limits)
        #expect(change.effective.logLevel == old.logLevel)
        #expect(change.effective.users == new.users)
        #expect(ConfigurationChange(from: old, to: old).summary == "no changes")
    }
}
