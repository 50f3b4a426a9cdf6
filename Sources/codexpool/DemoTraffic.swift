import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import UpstreamHTTP
import UpstreamSimulator

/// The demo's sample sessions: each a Codex-like session of two turns over HTTP/SSE with its own
/// `session-id`, one after another, so the least-used balancer's choices can be watched.
struct DemoTraffic {
    struct Result {
        var session: String
        /// Status of each turn; 200 when the answer streamed in full.
        var statuses: [Int]
        /// The simulated account that answered each turn.
        var accounts: [String]
        var milliseconds: Double

        var succeeded: Bool { statuses.allSatisfy { $0 == 200 } && !accounts.isEmpty && Set(accounts).count == 1 }
    }

    let baseURL: String
    let simulator: UpstreamSimulator
    static let turnsPerSession = 2

    func run(sessions: Int) async -> [Result] {
        let client = UpstreamClient()
        defer { client.shutdown() }
        let url = EndpointURL(parsing: baseURL)!
        let target = UpstreamTarget(host: url.host, port: url.port, tls: nil, hostHeader: url.hostHeader)
        var results: [Result] = []
        for index in stride(from: 1, through: sessions, by: 1) {
            let session = "demo-session-\(index)"
            var result = Result(session: session, statuses: [], accounts: [], milliseconds: 0)
            let started = ContinuousClock.now
            for turn in 1...Self.turnsPerSession {
                var headers = HTTPHeaders()
                headers.add(name: "authorization", value: "Bearer \(DemoFleet.userToken)")
                headers.add(name: "content-type", value: "application/json")
                headers.add(name: "session-id", value: session)
                let body = #"{"model":"gpt-5.5","stream":true,"store":false,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"sample turn \#(turn)"}]}]}"#
                do {
                    let response = try await client.collect(target, method: .POST, path: "/v1/responses", headers: headers, body: Array(body.utf8),
                                                            on: MultiThreadedEventLoopGroup.singleton.next()).get()
                    let complete = String(decoding: response.body, as: UTF8.self).contains("response.completed")
                    result.statuses.append(complete ? response.status : (response.status == 200 ? 502 : response.status))
                } catch {
                    result.statuses.append(0)
                }
                if let account = simulator.modelRequests.last(where: { $0.header("session-id") == session })?.accountID {
                    result.accounts.append(account)
                }
            }
            let elapsed = (ContinuousClock.now - started).components
            result.milliseconds = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
            results.append(result)
        }
        return results
    }

    static func report(_ results: [Result]) -> String {
        var lines = ["Sample sessions (\(turnsPerSession) turns each, one after another, user demo):"]
        for result in results {
            let account = result.accounts.first ?? "none"
            let outcome = result.succeeded ? "ok" : "FAILED (statuses \(result.statuses.map(String.init).joined(separator: ", ")))"
            lines.append("  \(result.session): \(outcome), served by \(account) on the \(DemoFleet.node(of: account)), \(String(format: "%.0f", result.milliseconds)) ms")
        }
        let succeeded = results.filter(\.succeeded)
        let onConnector = succeeded.filter { $0.accounts.first?.hasPrefix("home-") == true }.count
        lines.append("\(succeeded.count) of \(results.count) sessions succeeded: \(succeeded.count - onConnector) on the balancer's accounts, "
            + "\(onConnector) through the tunnel on the connector's.")
        return lines.joined(separator: "\n") + "\n"
    }
}
