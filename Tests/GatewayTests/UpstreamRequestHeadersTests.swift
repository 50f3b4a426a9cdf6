import Configuration
import Foundation
import Gateway
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The header lines of the request upstream gets: the client's minus what must not cross and
/// what codexpool sets itself, then the configured service headers, then the credential's own.
@Suite(.timeLimit(.minutes(1))) struct UpstreamRequestHeadersTests {
    @Test func clientHeadersServiceHeadersAndTheCredentialsOwnEachTakeTheirPlace() async throws {
        let bed = try await GatewayTestBed.start(
            accounts: [SimulatedAccount(accountID: "a", planType: "pro", fiveHourPercent: 10, weeklyPercent: 10)],
            upstreamHeaders: [
                UpstreamHeader(name: "X-Service", values: ["one"]),
                UpstreamHeader(name: "X-Many", values: ["b", "c"]),
                // A service header cannot take the credential's place.
                UpstreamHeader(name: "Authorization", values: ["Bearer configured"]),
            ])
        try await bed.stopAfter { () async throws in
            let response = try await bed.request(headers: [
                ("session-id", "s1"), ("Accept-Encoding", "gzip, br"), ("ChatGPT-Account-Id", "codexpool-user"),
                ("Connection", "keep-alive, X-Trace"), ("X-Trace", "1"), ("x-service", "from the client"),
                ("Authorization", "Bearer client"), ("X-Forwarded-For", "10.0.0.9"), ("User-Agent", "codex_cli_rs/0.163.0"),
            ], json: GatewayTestBed.turnBody)
            #expect(response.status == 200)

            let upstream = try #require(bed.simulator.modelRequests.last)
            let names = upstream.headers.map(\.name)
            #expect(upstream.accountID == "a")
            #expect(upstream.header("session-id") == "s1")
            #expect(upstream.header("user-agent") == "codex_cli_rs/0.163.0")
            #expect(upstream.header("accept-encoding") == nil, "taps read bodies: identity encoding")
            #expect(upstream.header("x-trace") == nil, "named by the client's Connection header")
            #expect(upstream.header("x-forwarded-for") == nil)
            #expect(upstream.headers.filter { $0.name == "x-service" }.map(\.value) == ["one"], "the configured value replaces the client's")
            #expect(upstream.headers.filter { $0.name == "x-many" }.map(\.value) == ["b", "c"])
            #expect(upstream.headers.filter { $0.name == "authorization" }.map(\.value) == ["Bearer access-a"])
            #expect(upstream.headers.filter { $0.name == "chatgpt-account-id" }.map(\.value) == ["a"])
            #expect(upstream.headers.filter { $0.name == "content-length" }.map(\.value) == [String(GatewayTestBed.turnBody.utf8.count)])
            #expect(names.filter { $0 == "host" }.count == 1)
        }
    }
}
