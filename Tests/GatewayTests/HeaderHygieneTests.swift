import Gateway
import NIOHTTP1
import Testing

@Suite struct HeaderHygieneTests {
    /// Scenario 22 of ocm-reference.md §12: front-proxy and credential headers stay behind, cookies pass.
    @Test func requestDropsFrontProxyCredentialAndHopByHopHeaders() {
        let client: HTTPHeaders = [
            "Host": "pool.example", "Connection": "keep-alive, X-Trace", "X-Trace": "1", "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "10.0.0.1", "CF-Connecting-IP": "10.0.0.1", "CDN-Loop": "cloudflare", "X-Real-IP": "10.0.0.1",
            "Authorization": "Bearer user-token", "X-Api-Key": "k", "Api-Key": "k", "Transfer-Encoding": "chunked",
            "Cookie": "a=b", "session-id": "s1", "Content-Type": "application/json",
        ]
        let forwarded = HeaderHygiene.forwardableRequestHeaders(client)
        #expect(forwarded.map(\.name).sorted() == ["Content-Type", "Cookie", "session-id"])
    }

    @Test func responseDropsCloudflareAndHopByHopButKeepsCodexHeaders() {
        let upstream: HTTPHeaders = [
            "CF-Ray": "abc", "Connection": "close", "Transfer-Encoding": "chunked",
            "x-codex-primary-used-percent": "12.5", "Content-Type": "text/event-stream", "Set-Cookie": "x=y",
        ]
        let forwarded = HeaderHygiene.forwardableResponseHeaders(upstream)
        #expect(forwarded.map(\.name).sorted() == ["Content-Type", "Set-Cookie", "x-codex-primary-used-percent"])
    }
}
