import OpenSSLTLS
import Testing

@Suite(.timeLimit(.minutes(1))) struct OpenSSLLibraryTests {
    @Test func linksOpenSSLThreeOrLater() {
        #expect(OpenSSLLibrary.majorVersion >= 3)
        #expect(OpenSSLLibrary.versionText.hasPrefix("OpenSSL 3"))
    }
}
