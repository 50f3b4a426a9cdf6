import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// `/v1/images/generations` and `/v1/images/edits` through the pool: the backend's image routes,
/// only accounts with `images: true`, at most `image_concurrency` at once each.
@Suite(.timeLimit(.minutes(3))) struct ImageEndpointTests {
    static func imageRequests(_ simulator: UpstreamSimulator) -> [SimulatedRequest] {
        simulator.requests.filter { $0.path.hasPrefix("/backend-api/codex/images/") }
    }

    @Test func theSDKGeneratesAndEditsWithAMaskOnAnAccountThatMay() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a"), SimulatedAccount(accountID: "b")],
                                                 users: [.init(name: "dev", token: "dev-token", credential: "pool")],
                                                 images: ["a": (false, 3)])
        try await bed.stopAfter {
            let generated = try await OpenAISDKTests.sdk("image-generate", port: bed.server.port, token: "dev-token")
            #expect(generated["count"] as? Int == 2, "\(generated)")
            #expect(generated["first"] as? String == "89504e470d0a1a0a", "a PNG came back")
            #expect(generated["revised"] as? String == "A lighthouse at dawn")
            let edited = try await OpenAISDKTests.sdk("image-edit", port: bed.server.port, token: "dev-token")
            #expect(edited["revised"] as? String == "Edit the masked area of 1 image: Add a red boat", "\(edited)")
            // Both went to b (a may not serve images), the edit as JSON with the files as data URLs.
            let requests = Self.imageRequests(bed.simulator)
            #expect(requests.map(\.accountID) == ["b", "b"])
            let edit = try #require(try JSONSerialization.jsonObject(with: requests[1].body) as? [String: Any])
            #expect(((edit["images"] as? [[String: Any]])?.first?["image_url"] as? String)?.hasPrefix("data:image/png;base64,iVBORw0KGgo") == true)
            #expect(((edit["mask"] as? [String: Any])?["image_url"] as? String)?.hasPrefix("data:image/png;base64,") == true)
            #expect(edit["model"] as? String == "gpt-image-2")
            // Counted like any request, under their own routes.
            let metrics = String(decoding: bed.runtime.metricsExposition(), as: UTF8.self)
            #expect(metrics.contains(#"route="image_generations",status="200",credential="b""#), "\(metrics)")
            #expect(metrics.contains(#"route="image_edits",status="200",credential="b""#))
        }
    }

    /// a serves one image request at a time, b none; one generation is held under way on a.
    static func bedWithABusySlot(patience: TimeAmount) async throws -> GatewayTestBed {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a"), SimulatedAccount(accountID: "b")],
                                                 users: [.init(name: "dev", token: "dev-token", credential: "pool")],
                                                 images: ["a": (true, 1), "b": (false, 3)], imagePatience: patience)
        bed.simulator.holdAnswers()
        return bed
    }

    static func generate(_ bed: GatewayTestBed) async throws -> UpstreamClient.CollectedResponse {
        try await bed.request(.POST, "/v1/images/generations", headers: [("authorization", "Bearer dev-token")], json: #"{"model":"gpt-image-2","prompt":"a cat"}"#)
    }

    @Test func beyondImageConcurrencyARequestWaitsThenGets429() async throws {
        let bed = try await Self.bedWithABusySlot(patience: .seconds(1))
        try await bed.stopAfter {
            let first = Task { try await Self.generate(bed) }
            try await bed.simulator.waitUntil { $0.heldAnswers == 1 }
            #expect(bed.runtime.imageSlots.busy("a") == 1)
            // The next waits for a's slot (b may not serve images) and, with the first still under way, gets 429.
            let refused = try await Self.generate(bed)
            #expect(refused.status == 429)
            #expect(refused.text.contains("image_concurrency"), "\(refused.text)")
            #expect(refused.header("retry-after") != nil)
            #expect(Self.imageRequests(bed.simulator).count == 1, "it never went upstream")
            bed.simulator.releaseAnswers()
            #expect(try await first.value.status == 200)
        }
    }

    @Test func aRequestThatWaitsGetsTheSlotWhenItFrees() async throws {
        // Patience far beyond the test: the wait ends by the release, never by the clock.
        let bed = try await Self.bedWithABusySlot(patience: .seconds(120))
        try await bed.stopAfter {
            let first = Task { try await Self.generate(bed) }
            try await bed.simulator.waitUntil { $0.heldAnswers == 1 }
            let waiting = Task { try await Self.generate(bed) }
            let slots = bed.runtime.imageSlots
            try await waitUntil("the second request waits for the slot") { slots.waiting == 1 }
            #expect(Self.imageRequests(bed.simulator).count == 1, "it has not gone upstream")
            bed.simulator.releaseAnswers()
            #expect(try await first.value.status == 200)
            #expect(try await waiting.value.status == 200)
            #expect(Self.imageRequests(bed.simulator).map(\.accountID) == ["a", "a"])
            #expect(slots.busy("a") == 0)
        }
    }

    @Test func badImageRequestsAreRefusedByName() async throws {
        let bed = try await GatewayTestBed.start(accounts: [SimulatedAccount(accountID: "a")], users: [.init(name: "dev", token: "dev-token", credential: "pool")])
        try await bed.stopAfter {
            let auth = [("authorization", "Bearer dev-token")]
            for (path, body, parameter) in [("/v1/images/generations", #"{"model":"gpt-image-2"}"#, "prompt"),
                                            ("/v1/images/generations", #"{"prompt":"x","response_format":"url"}"#, "response_format"),
                                            ("/v1/images/generations", #"{"prompt":"x","style":"vivid"}"#, "style"),
                                            ("/v1/images/edits", #"{"prompt":"x"}"#, "images")] {
                let answer = try await bed.request(.POST, path, headers: auth, json: body)
                #expect(answer.status == 400, "\(body)")
                #expect(JSONValue.parse(answer.body)?["error"]?["param"]?.stringValue == parameter, "\(answer.text)")
            }
            #expect(Self.imageRequests(bed.simulator).isEmpty)
        }
    }
}
