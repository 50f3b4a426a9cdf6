import Configuration
import Testing

@Suite(.timeLimit(.minutes(1))) struct AddressParsingTests {
    @Test func listenAddresses() {
        #expect(ListenAddress(parsing: "0.0.0.0:8443") == ListenAddress(host: "0.0.0.0", port: 8443))
        #expect(ListenAddress(parsing: "[::1]:8080") == ListenAddress(host: "::1", port: 8080))
        #expect(ListenAddress(parsing: "[::1]:8080")?.description == "[::1]:8080")
        #expect(ListenAddress(parsing: "localhost:0")?.port == 0)
        for bad in ["8080", ":8080", "host:", "host:65536", "host:-1", "::1:80", "[::1]8080", "a b:1", "host:+80", "host:8O"] {
            #expect(ListenAddress(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func endpointURLs() throws {
        let url = try #require(EndpointURL(parsing: "HTTPS://Example.com:8443/a/b/"))
        #expect(url.scheme == .https && url.host == "Example.com" && url.port == 8443 && url.path == "/a/b")
        #expect(url.hostHeader == "Example.com:8443")
        #expect(EndpointURL(parsing: "http://[::1]")?.hostHeader == "[::1]")
        #expect(EndpointURL(parsing: "http://[::1]")?.port == 80)
        #expect(EndpointURL(parsing: "https://x")?.port == 443)
        for bad in ["example.com", "ftp://x", "https://", "https://u:p@x", "https://x/?q=1", "https://x#f", "https://x:0", "https://x:99999"] {
            #expect(EndpointURL(parsing: bad) == nil, "\(bad)")
        }
    }
}
