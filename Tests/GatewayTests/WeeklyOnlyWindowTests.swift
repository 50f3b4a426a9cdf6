import Foundation
@testable import Gateway
import PoolCore
import Testing
import TestSupport
import UpstreamHTTP
import UpstreamSimulator

/// Accounts that report only a weekly window (it arrives in the primary slot, 10080 minutes, with
/// no secondary) are read as weekly, never as a 5-hour window, whichever way the reading arrives.
@Suite(.timeLimit(.minutes(1))) struct WeeklyOnlyWindowTests {
    static func accounts() -> [SimulatedAccount] {
        [SimulatedAccount(accountID: "weekly", planType: "plus", fiveHourPercent: nil, weeklyPercent: 60),
         // Nearly used up, so least-used sends the traffic to the weekly-only account.
         SimulatedAccount(accountID: "both", planType: "plus", fiveHourPercent: 20, weeklyPercent: 95)]
    }

    static func expectWeeklyOnly(_ bed: GatewayTestBed) throws {
        let state = try #require(bed.runtime.credentialStates.first { $0.tag == "weekly" })
        let now = Date()
        #expect(state.usage.usedPercent(.weekly, now: now) == 60)
        #expect(state.usage.usedPercent(.fiveHour, now: now) == 0, "the week is not taken for a 5-hour window")
        #expect(state.usage.resetAt(.fiveHour, now: now) == nil)
    }

    @Test func pollHeadersAndEventsAllReadTheWeekAsWeekly() async throws {
        let bed = try await GatewayTestBed.start(accounts: Self.accounts())
        try await bed.stopAfter { () async throws in
            await waitForData(bed, tags: ["weekly", "both"])
            try Self.expectWeeklyOnly(bed)  // from the usage poll

            let response = try await bed.request(headers: [("session-id", "weekly-http")], json: GatewayTestBed.turnBody)
            #expect(response.status == 200)
            #expect(bed.simulator.modelRequests.last?.accountID == "weekly")
            try Self.expectWeeklyOnly(bed)  // from the response headers

            let client = try await TestWebSocketClient.connect(port: bed.server.port, headers: [("session-id", "weekly-ws")])
            guard case .upgraded = client.outcome else { Issue.record("not upgraded"); return }
            let events = try await client.warmUpAndTurn()
            client.close()
            try Self.expectWeeklyOnly(bed)  // from the codex.rate_limits events
            // What the client sees is the pool's aggregate, windows in their usual slots.
            let limits = try #require(events.first { $0["type"] as? String == "codex.rate_limits" })
            let windows = try #require(limits["rate_limits"] as? [String: Any])
            let aggregate = bed.runtime.aggregate(for: AuthenticatedUser(name: "", provider: "pool", scope: .all, viewer: .everyone))
            let secondary = try #require(windows["secondary"] as? [String: Any])
            #expect(secondary["window_minutes"] as? Int == 10080)
            #expect(abs((secondary["used_percent"] as? Double ?? -1) - (aggregate.weeklyUtilization * 100).rounded() / 100) < 0.01)
        }
    }
}
