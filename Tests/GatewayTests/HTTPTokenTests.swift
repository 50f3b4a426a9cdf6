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
}
