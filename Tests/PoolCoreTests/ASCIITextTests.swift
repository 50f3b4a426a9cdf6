import PoolCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct ASCIITextTests {
    static let names = [
        "", "x", "X-", "x-codex-primary-used-percent", "X-Codex-Primary-Used-Percent", "CF-Ray", "cf-", "Content-Type",
        "x-codex-credits-has-credits", "X-CODEX-CREDITS-", "-limit-name", "keep-alive", "ÄX-codex", "x-émoji-👍",
    ]

    /// The byte-level helper agrees with the standard library's Unicode-aware one on header names.
    @Test(arguments: names) func agreesWithStandardLibrary(name: String) {
        let expectedLower = String(name.map { $0.isASCII ? Character($0.lowercased()) : $0 })
        #expect(name.asciiLowercased == expectedLower)
    }

    @Test func lowerCaseNamesAreReturnedAsTheyAre() {
        let name = "x-codex-secondary-window-minutes"
        #expect(name.asciiLowercased == name)
        #expect("X-Codex-Secondary-Window-Minutes".asciiLowercased == name)
    }
}
