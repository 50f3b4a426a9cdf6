import Configuration
import Foundation
import NIOHTTP1
@testable import Gateway
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// The OpenAI API surface (`/v1/chat/completions`, `/v1/models`) through a balancer in front
/// of the simulator, driven by the official `openai` Python SDK.
@Suite(.timeLimit(.minutes(3))) struct OpenAISDKTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("OpenAISDK/sdk_client.py")

    /// Runs one scenario of the SDK script; its JSON answer.
    static func sdk(_ scenario: String, port: Int, token: String) async throws -> [String: Any] {
        let python = try #require(ChildProcess.onPath("python3"), "python3 is not on PATH")
        let check = try await ChildProcess.run(python, ["-c", "import openai"], environment: nil)
        try #require(check.status == 0, "the openai Python SDK is missing: python3 -m pip install openai (scripts/test installs it)")
        let run = try await ChildProcess.run(python, [script.path, "http://127.0.0.1:\(port)/v1", token, scenario], environment: nil)
        try #require(run.status == 0, "sdk_client.py \(scenario) failed: \(run.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "not JSON: \(run.stdout)")
    }

    static func bed(_ accounts: [SimulatedAccount], limits: UserLimits = UserLimits()) async throws -> GatewayTestBed {
        try await GatewayTestBed.start(accounts: accounts, users: [.init(name: "dev", token: "dev-token", credential: "pool", limits: limits)])
    }

    @Test func aStreamedChatCallsAToolAndUsesItsAnswer() async throws {
        let bed = try await Self.bed([SimulatedAccount(accountID: "a"), SimulatedAccount(accountID: "b", weeklyPercent: 50)])
        try await bed.stopAfter {
            let result = try await Self.sdk("tool-round-trip", port: bed.server.port, token: "dev-token")
            let first = try #require(result["first"] as? [String: Any], "\(result)")
            #expect(first["finish"] as? String == "tool_calls")
            let call = try #require((first["calls"] as? [[String: Any]])?.first)
            #expect(call["name"] as? String == "get_weather")
            let arguments = try #require(try JSONSerialization.jsonObject(with: Data((call["arguments"] as? String ?? "").utf8)) as? [String: Any])
            #expect(arguments["city"] as? String == "example")
            let second = try #require(result["second"] as? [String: Any])
            #expect(second["finish"] as? String == "stop")
            #expect(second["text"] as? String == "The tool returned: sunny, 21 C")
            let usage = try #require(second["usage"] as? [String: Any], "no usage chunk")
            #expect(usage["prompt_tokens"] as? Int == 120)
            #expect(usage["completion_tokens"] as? Int == 8)
            #expect(usage["total_tokens"] as? Int == 128)
            // The backend got Responses requests: the call's output went back as function_call_output,
            // and both rounds stayed on one account (sticky by the conversation's opening).
            let requests = bed.simulator.modelRequests
            #expect(requests.count == 2)
            #expect(Set(requests.map(\.accountID)).count == 1)
            let followUp = try #require(try JSONSerialization.jsonObject(with: requests[1].body) as? [String: Any])
            let items = try #require(followUp["input"] as? [[String: Any]])
            #expect(items.contains { $0["type"] as? String == "function_call_output" && $0["output"] as? String == "sunny, 21 C" })
            #expect(followUp["instructions"] as? String == "You answer briefly.")
            #expect(followUp["store"] as? Bool == false)
        }
    }

    @Test func aPlainChatAJSONSchemaAnswerAndAnImage() async throws {
        let bed = try await Self.bed([SimulatedAccount(accountID: "a", reply: "Hello there.")])
        try await bed.stopAfter {
            let plain = try await Self.sdk("plain", port: bed.server.port, token: "dev-token")
            #expect(plain["object"] as? String == "chat.completion")
            let choice = try #require((plain["choices"] as? [[String: Any]])?.first)
            #expect((choice["message"] as? [String: Any])?["content"] as? String == "Hello there.")
            #expect(choice["finish_reason"] as? String == "stop")
            #expect((plain["usage"] as? [String: Any])?["total_tokens"] as? Int == 128)

            let structured = try await Self.sdk("json-schema", port: bed.server.port, token: "dev-token")
            let content = try #require(structured["content"] as? String)
            let city = try #require(try JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any], "\(content)")
            #expect(Set(city.keys) == ["name", "population", "coastal"])
            #expect(city["population"] as? Int == 42)
            let last = try #require(bed.simulator.modelRequests.last)
            let sent = try #require(try JSONSerialization.jsonObject(with: last.body) as? [String: Any])
            #expect(((sent["text"] as? [String: Any])?["format"] as? [String: Any])?["type"] as? String == "json_schema")

            let image = try await Self.sdk("image-input", port: bed.server.port, token: "dev-token")
            #expect(image["content"] as? String == "I see 1 image. Hello there.")
        }
    }

    @Test func modelsComeFromThePoolsCatalogsCachedByETag() async throws {
        let bed = try await Self.bed([SimulatedAccount(accountID: "a", planType: "plus"), SimulatedAccount(accountID: "b", planType: "pro")])
        try await bed.stopAfter {
            await waitForData(bed, tags: ["a", "b"])
            let result = try await Self.sdk("models", port: bed.server.port, token: "dev-token")
            let listed = try #require(result["listed"] as? [String])
            #expect(listed == ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5.5-pro"], "the plus and the pro catalogs together")
            #expect((result["one"] as? [String: Any])?["id"] as? String == "gpt-5.5")
            #expect((result["missing"] as? [String: Any])?["status"] as? Int == 404)
            // One catalog request per plan; the lists asked for afterwards came from the cache.
            #expect(bed.simulator.catalogRequests == 2)
        }
    }

    @Test func errorsKeepTheOpenAIShape() async throws {
        let bed = try await Self.bed([SimulatedAccount(accountID: "a", behavior: .rateLimited), SimulatedAccount(accountID: "b", reply: "From b.")],
                                     limits: UserLimits(requestsPerDay: 2))
        try await bed.stopAfter {
            // a is out: the request fails over to b.
            let plain = try await Self.sdk("plain", port: bed.server.port, token: "dev-token")
            #expect(((plain["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String == "From b.", "\(plain)")
            // A parameter the backend has no equivalent for is named, not dropped.
            let unsupported = try #require(try await Self.sdk("unsupported", port: bed.server.port, token: "dev-token")["error"] as? [String: Any])
            #expect(unsupported["status"] as? Int == 400)
            #expect(unsupported["param"] as? String == "temperature")
            #expect((unsupported["message"] as? String)?.contains("temperature") == true)
            // The user's second request of the day is their last.
            _ = try await Self.sdk("plain", port: bed.server.port, token: "dev-token")
            let limited = try #require(try await Self.sdk("plain", port: bed.server.port, token: "dev-token")["error"] as? [String: Any])
            #expect(limited["status"] as? Int == 429)
            #expect(limited["type"] as? String == "RateLimitError")
            #expect((limited["message"] as? String)?.contains("requests_per_day") == true, "\(limited)")
            #expect(limited["retry_after"] as? String != nil)
        }
    }

    @Test func theSameChatGoesThroughTheTunnel() async throws {
        let pair = try await ReverseTunnelTests.startPair()
        try await pair.stopAfter {
            try await ReverseTunnelTests.eventually { ReverseTunnelTests.isServing(pair.balancer, "home") }
            let result = try await Self.sdk("tool-round-trip", port: pair.balancer.server.port, token: "laptop-token")
            let first = try #require(result["first"] as? [String: Any], "\(result)")
            #expect(first["finish"] as? String == "tool_calls")
            #expect(((first["calls"] as? [[String: Any]])?.first)?["name"] as? String == "get_weather")
            #expect((result["second"] as? [String: Any])?["text"] as? String == "The tool returned: sunny, 21 C")
            // Served by the connector's account, through the tunnel.
            #expect(pair.balancer.simulator.modelRequests.map(\.accountID) == ["home", "home"])
        }
    }

    @Test func withEveryAccountRateLimitedTheAnswerSaysWhenToComeBack() async throws {
        let bed = try await Self.bed([SimulatedAccount(accountID: "a", behavior: .rateLimited), SimulatedAccount(accountID: "b", behavior: .rateLimited)])
        try await bed.stopAfter {
            let answer = try await bed.request(.POST, "/v1/chat/completions", headers: [("authorization", "Bearer dev-token")],
                                               json: #"{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(answer.status == 429)
            let error = try #require(JSONValue.parse(answer.body)?["error"], "\(answer.text)")
            #expect(error["type"]?.stringValue == "usage_limit_reached")
            let retryAfter = try #require(answer.header("retry-after").flatMap(Int.init))
            // Both accounts' weekly windows are used up and reset in five days (the simulator's default).
            #expect(abs(retryAfter - 5 * 86_400) <= 60, "\(retryAfter)")
            // No credential at all (an unknown one behind the user): still the OpenAI shape, not plain text.
            let offline = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "c")], balancer: nil,
                                                         users: [.init(name: "dev", token: "dev-token", credential: "c")],
                                                         authFiles: ["c": "not json"])
            try await offline.stopAfter {
                let refused = try await offline.request(.POST, "/v1/chat/completions", headers: [("authorization", "Bearer dev-token")],
                                                        json: #"{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}"#)
                #expect(refused.status == 400)
                #expect(JSONValue.parse(refused.body)?["error"]?["message"]?.stringValue?.contains("c") == true, "\(refused.text)")
            }
        }
    }

    @Test func aStaleCatalogIsServedWhileItIsRevalidatedWithItsETag() async throws {
        let clock = SettableClock(Date())
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a", planType: "plus")], balancer: nil,
                                                 users: [.init(name: "dev", token: "dev-token", credential: "a")], clock: clock)
        try await bed.stopAfter {
            await waitForData(bed, tags: ["a"])
            func list() async throws -> [String] {
                let answer = try await bed.request(.GET, "/v1/models", headers: [("authorization", "Bearer dev-token")])
                #expect(answer.status == 200)
                return JSONValue.parse(answer.body)?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            #expect(try await list() == ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex"])
            #expect(try await list().count == 4)
            #expect(bed.simulator.catalogRequests == 1, "fresh for five minutes")
            clock.set(clock.now().addingTimeInterval(ModelCatalog.freshFor + 1))
            // Stale: answered from the cache at once, and asked again in the background with its ETag (304).
            #expect(try await list().count == 4)
            try await waitUntil("the background revalidation") { bed.simulator.catalogRequests == 2 }
            let revalidation = try #require(bed.simulator.requests.last { $0.path == "/backend-api/codex/models" })
            #expect(revalidation.headers.contains { $0.0 == "if-none-match" && $0.1 == #""catalog-plus-4""# })
            #expect(revalidation.headers.contains { $0.0 == "version" && $0.1 == ModelCatalog.clientVersion })
        }
    }

    @Test func withoutAReadableCatalogTheConfiguredListIsServed() async throws {
        // c's file cannot be read: no catalog can be asked for, so the configuration's list answers.
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "c")], balancer: nil,
                                                 users: [.init(name: "dev", token: "dev-token", credential: "c")], authFiles: ["c": "not json"])
        try await bed.stopAfter {
            let answer = try await bed.request(.GET, "/v1/models", headers: [("authorization", "Bearer dev-token")])
            #expect(answer.status == 200)
            let ids = JSONValue.parse(answer.body)?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
            #expect(ids == bed.runtime.configuration.fallbackModels)
            #expect(bed.simulator.catalogRequests == 0)
            let missing = try await bed.request(.GET, "/v1/models/gpt-9", headers: [("authorization", "Bearer dev-token")])
            #expect(missing.status == 404)
            #expect(JSONValue.parse(missing.body)?["error"]?["code"]?.stringValue == "model_not_found")
        }
    }
}
