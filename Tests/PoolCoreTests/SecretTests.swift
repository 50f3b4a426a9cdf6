import PoolCore
import Testing

@Suite struct SecretTests {
    @Test func comparesWholeTokens() {
        let secret = Secret("sk-user-token")
        #expect(secret.constantTimeEquals("sk-user-token"))
        #expect(!secret.constantTimeEquals("sk-user-toke"))
        #expect(!secret.constantTimeEquals("sk-user-token!"))
        #expect(!secret.constantTimeEquals(""))
    }

    @Test func anEmptySecretMatchesNothingAndDoesNotCrash() {
        #expect(!Secret("").constantTimeEquals("anything"))
        #expect(!Secret("").constantTimeEquals(""))
    }

    @Test func printsOnlyAFingerprint() {
        let secret = Secret("sk-user-token")
        #expect(!"\(secret)".contains("sk-user-token"))
        #expect("\(secret)".hasPrefix("secret#"))
    }
}
