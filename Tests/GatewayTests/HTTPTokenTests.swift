import HTTPWire
import Testing

/// Header-name comparison without copying: any case of the expected name matches, nothing else
/// does — not a prefix, not a longer name, not bytes that only match once lowered blindly.
@Suite(.timeLimit(.minutes(1))) struct HTTPTokenTests {
    @Test func namesMatchInAnyCaseAndOnlyWhole() {
        for name in ["content-length", "Content-Length", "CONTENT-LENGTH", "cOnTeNt-LeNgTh"] {
            #expect(HTTPToken.name(name, is: "content-length"))
            #expect(HTTPToken.name(Substring("x" + name).dropFirst(), is: "content-length"))
            var bytes = Array(name.utf8)
            #expect(bytes.withUnsafeMutableBytes { HTTPToken.name(UnsafeRawBufferPointer($0), is: "content-length") })
        }
        for name in ["content-lengt", "content-lengths", "", "content_length", "xontent-length"] {
            #expect(!HTTPToken.name(name, is: "content-length"))
        }
        // 0x0D | 0x20 is "-": only letters are folded, so a carriage return is not a dash.
        #expect(!HTTPToken.name("content\rlength", is: "content-length"))
        #expect(!HTTPToken.name("CONNECTIOn\u{0}", is: "connection"))
    }

    /// Prefixes and suffixes in any case agree with the standard library's on the lowered names.
    @Test func prefixesAndSuffixesAgreeWithTheStandardLibrary() {
        let names = ["", "x", "X-", "x-codex-primary-used-percent", "X-Codex-Primary-Used-Percent", "CF-Ray", "cf-", "-limit-name", "ÄX-codex"]
        for name in names {
            for part in names where part == part.lowercased() {
                var whole = name, lowered = part
                let lowerName = name.lowercased()
                whole.withUTF8 { wholeBytes in
                    lowered.withUTF8 { partBytes in
                        let (bytes, partRaw) = (UnsafeRawBufferPointer(wholeBytes), UnsafeRawBufferPointer(partBytes))
                        #expect(HTTPToken.name(bytes, hasPrefix: partRaw) == lowerName.utf8.starts(with: part.utf8), "\(name) prefix \(part)")
                        #expect(HTTPToken.name(bytes, hasSuffix: partRaw) == lowerName.utf8.reversed().starts(with: part.utf8.reversed()), "\(name) suffix \(part)")
                    }
                }
            }
        }
    }

    /// The bitmap agrees with the byte class for every byte, alone and inside a name; values
    /// refuse exactly CR, LF and NUL wherever they are.
    @Test func tokensAndValuesAreCheckedByteForByte() {
        for byte in 0...255 {
            let byte = UInt8(byte)
            #expect([byte].withUnsafeBytes { HTTPToken.isToken($0) } == HTTPToken.isTokenByte(byte), "byte \(byte)")
            #expect(Array("x-\(Character(Unicode.Scalar(byte)))z".utf8).withUnsafeBytes { HTTPToken.isToken($0) } == HTTPToken.isTokenByte(byte), "byte \(byte) in a name")
            let value = Array("ab".utf8) + [byte] + Array("cd".utf8)
            #expect(value.withUnsafeBytes { HTTPToken.isValidValue($0) } == !(byte == 0x0D || byte == 0x0A || byte == 0x00), "byte \(byte)")
        }
        #expect(![UInt8]().withUnsafeBytes { HTTPToken.isToken($0) }, "an empty name is no name")
        #expect([UInt8]().withUnsafeBytes { HTTPToken.isValidValue($0) })
    }
}
