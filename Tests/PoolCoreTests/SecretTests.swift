import PoolCore
import PropertyBased
import Testing

@Suite(.timeLimit(.minutes(1))) struct SecretTests {
    /// 269 − 13 = 256: the length difference vanished in an 8-bit accumulator, and a token that
    /// repeats the secret then compared equal byte for byte.
    @Test func aTokenRepeatingTheSecretIsNotTheSecret() {
        let secret = Secret("abcdefghijklm")
        let repeated = String(String(repeating: "abcdefghijklm", count: 21).prefix(269))
        #expect(repeated.utf8.count == 269)
        #expect(!secret.constantTimeEquals(repeated))
        #expect(!Secret(repeated).constantTimeEquals("abcdefghijklm"))
    }

    /// Equal exactly when the strings are equal, for any lengths (repetitions included).
    @Test func equalExactlyWhenEqual() async {
        let text = Gen.element(of: Array("ab0")).array(of: 1...12).map { String($0.compactMap { $0 }) }
        await propertyCheck(count: 500, input: text, Gen.int(in: 0...40), Gen.int(in: 0...3)) { base, repeats, trim in
            let secret = Secret(base)
            let candidate = String(String(repeating: base, count: repeats).dropLast(trim))
            #expect(secret.constantTimeEquals(candidate) == (candidate == base), "\(base) vs \(candidate)")
        }
    }

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
