import Foundation
import Gateway
import NIOHTTP1
import PoolCore
import Testing
import UpstreamHTTP

@Suite(.timeLimit(.minutes(1))) struct HeaderHygieneTests {
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

    /// The client's copy of an upstream response: hop-by-hop and Cloudflare headers dropped, the
    /// account's own rate-limit headers (in any case) replaced by the aggregate, the rest kept.
    @Test func responseDropsCloudflareHopByHopAndAccountLimits() {
        let upstream: HTTPHeaders = [
            "CF-Ray": "abc", "cf-cache-status": "DYNAMIC", "Connection": "close", "Transfer-Encoding": "chunked",
            "x-codex-primary-used-percent": "12.5", "X-Codex-Secondary-Reset-At": "1700000000", "X-CODEX-PLAN-TYPE": "pro",
            "Content-Type": "text/event-stream", "Set-Cookie": "x=y", "x-codex-turn-state": "t1", "X-Request-Id": "r1",
        ]
        let status = AggregateStatus(fiveHourUtilization: 40, fiveHourReset: nil, weeklyUtilization: 7.5, weeklyReset: nil, planWeight: 2)
        let forwarded = RateLimitHeaderRewriter.clientResponseHeaders(upstream, with: status, now: Date(timeIntervalSince1970: 0))
        #expect(forwarded.map(\.name) == [
            "Content-Type", "Set-Cookie", "x-codex-turn-state", "X-Request-Id",
            "x-codex-primary-used-percent", "x-codex-primary-window-minutes", "x-codex-secondary-used-percent",
            "x-codex-secondary-window-minutes", "x-ocm-plan-weight",
        ])
        #expect(forwarded["x-codex-primary-used-percent"] == ["40.00"])
        #expect(forwarded["x-codex-secondary-used-percent"] == ["7.50"])
    }
}
