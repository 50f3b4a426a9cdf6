import OpenSSLTLS
import Testing

@Suite struct OpenSSLLibraryTests {
    @Test func linksOpenSSLThreeOrLater() {
        #expect(OpenSSLLibrary.majorVersion >= 3)
        #expect(OpenSSLLibrary.versionText.hasPrefix("OpenSSL 3"))
    }
}
