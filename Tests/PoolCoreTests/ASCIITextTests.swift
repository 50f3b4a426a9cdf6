import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct ASCIITextTests {
    static let names = [
        "", "x", "X-", "x-codex-primary-used-percent", "X-Codex-Primary-Used-Percent", "CF-Ray", "cf-", "Content-Type",
        "x-codex-credits-has-credits", "X-CODEX-CREDITS-", "-limit-name", "keep-alive", "ÄX-codex", "x-émoji-👍",
    ]

    /// The byte-level helpers agree with the standard library's Unicode-aware ones on header names.
    @Test(arguments: names) func agreesWithStandardLibrary(name: String) {
        let expectedLower = String(name.map { $0.isASCII ? Character($0.lowercased()) : $0 })
        #expect(name.asciiLowercased == expectedLower)
        for other in Self.names {
            #expect(name.bytesHavePrefix(other) == name.utf8.starts(with: other.utf8), "\(name) prefix \(other)")
            #expect(name.bytesHaveSuffix(other) == name.utf8.reversed().starts(with: other.utf8.reversed()), "\(name) suffix \(other)")
        }
    }

    @Test func lowerCaseNamesAreReturnedAsTheyAre() {
        let name = "x-codex-secondary-window-minutes"
        #expect(name.asciiLowercased == name)
        #expect("X-Codex-Secondary-Window-Minutes".asciiLowercased == name)
    }
}
