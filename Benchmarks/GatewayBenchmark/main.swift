// Proxy overhead of the gateway: time to first byte, requests per second and streaming
// throughput of SSE responses, directly to the simulator, through codexpool and through nginx
// as a plain reverse proxy, all in one run; then the reverse tunnel: a balancer's own account
// vs. a connector's account reached through the tunnel, and 1,000 concurrent streams through
// one tunnel. Prints Markdown sections for BENCHMARKS.md.
//
// Usage: GatewayBenchmark <seconds per target> <concurrent streams> [nginx path]
import BenchmarkSupport
import Configuration
import Foundation
import Gateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PoolCore
import Synchronization
import UpstreamSimulator

let arguments = CommandLine.arguments
let seconds = arguments.count > 1 ? Double(arguments[1]) ?? 5 : 5
let concurrency = arguments.count > 2 ? Int(arguments[2]) ?? 64 : 64
let nginxPath = arguments.count > 3 ? arguments[3] : "/usr/sbin/nginx"

let simulatorGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

// About 4 KB of answer in 32 SSE deltas: a short Codex turn.
let reply = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 90)
let simulator = try await UpstreamSimulator.start(
    accounts: [SimulatedAccount(accountID: "bench", planType: "pro", fiveHourPercent: 10, weeklyPercent: 10, reply: reply, deltaCount: 32)],
    group: simulatorGroup)

// codexpool in front of it, one event loop.
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
let authPath = folder.appendingPathComponent("auth.json").path
try simulator.account("bench")!.authJSON().write(toFile: authPath, atomically: true, encoding: .utf8)
let configuration = CodexpoolConfiguration(
    listen: ListenAddress(host: "127.0.0.1", port: 0),
    upstream: UpstreamEndpoints(baseURL: EndpointURL(parsing: simulator.baseURL)!, apiBaseURL: EndpointURL(parsing: "http://127.0.0.1:\(simulator.port)")!,
                                usageURL: EndpointURL(parsing: simulator.usageURL)!, tokenURL: EndpointURL(parsing: simulator.tokenURL)!),
    credentials: [.local(LocalCredentialConfiguration(tag: "bench", credentialPath: authPath))],
    // History on, as `serve` has it by default: every request is also a row in SQLite.
    storage: StorageConfiguration(enabled: true, path: folder.appendingPathComponent("history.sqlite3").path))
var logger = Logger(label: "bench")
logger.logLevel = .critical
let runtime = try GatewayRuntime(configuration: configuration, logger: logger, eventLoopGroup: proxyGroup)
await runtime.start()
let gateway = try await GatewayServer.start(runtime: runtime)

// nginx as a plain reverse proxy with keep-alive upstream connections, no buffering (SSE), one worker.
let nginxPort = try await freePort()
let nginxConfig = """
worker_processes 1;
daemon off;
pid \(folder.path)/nginx.pid;
error_log \(folder.path)/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
    client_body_temp_path \(folder.path)/body;
    proxy_temp_path \(folder.path)/proxy;
    upstream simulator { server 127.0.0.1:\(simulator.port); keepalive 128; }
    server {
        listen 127.0.0.1:\(nginxPort);
        location /v1/ {
            proxy_pass http://simulator/backend-api/codex/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Authorization "Bearer access-bench";
            proxy_buffering off;
        }
    }
}
"""
try nginxConfig.write(to: folder.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
let nginx = Process()
nginx.executableURL = URL(fileURLWithPath: nginxPath)
nginx.arguments = ["-p", folder.path, "-c", folder.appendingPathComponent("nginx.conf").path]
nginx.standardError = FileHandle.nullDevice
try nginx.run()
try await waitUntilListening(port: nginxPort)

let body = #"{"model":"gpt-5.5","stream":true,"store":false,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
let webSocketTurn = #"{"type":"response.create","model":"gpt-5.5","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#
let targets: [(String, Int, String, [(String, String)])] = [
    ("simulator directly", simulator.port, "/backend-api/codex/responses", [("authorization", "Bearer access-bench")]),
    ("through codexpool", gateway.port, "/v1/responses", []),
    ("through nginx", nginxPort, "/v1/responses", []),
]
// Phase 1, latency: streams paced like a model (2 ms between events, ~80 ms per turn), so the
// machine is not saturated and time to first byte shows what each hop adds.
// Phase 2, capacity: answers sent at once, every path as fast as it goes.
var paced: [String: LoadResult] = [:], flat: [String: LoadResult] = [:]
/// Each unpaced round's results: ratios are taken within a round, where the paths ran a few
/// seconds apart, and their median reported, so one disturbed second cannot decide.
var flatRounds: [[String: LoadResult]] = []
// GATEWAY_BENCHMARK_ONLY=tunnel skips to the tunnel phases (for profiling them).
let tunnelOnly = ProcessInfo.processInfo.environment["GATEWAY_BENCHMARK_ONLY"] == "tunnel"
// GATEWAY_BENCHMARK_ONLY=capacity runs the unpaced load through codexpool and nginx, `seconds` each, and stops (for profiling).
if ProcessInfo.processInfo.environment["GATEWAY_BENCHMARK_ONLY"] == "capacity" {
    simulator.updateAccount("bench") { $0.eventIntervalMilliseconds = 0 }
    for (name, port, path, headers) in targets.dropFirst() {
        let result = try await runLoad(port: port, path: path, headers: headers, body: body, duration: seconds, concurrency: concurrency)
        print("\(name): \(Int(result.requestsPerSecond)) requests/s")
    }
    nginx.terminate()
    exit(0)
}
// GATEWAY_BENCHMARK_ONLY=websocket does the same with unpaced WebSocket sessions.
if ProcessInfo.processInfo.environment["GATEWAY_BENCHMARK_ONLY"] == "websocket" {
    simulator.updateAccount("bench") { $0.eventIntervalMilliseconds = 0 }
    for (name, port, path, headers) in targets {
        let result = try await runWebSocketLoad(port: port, path: path, headers: headers, turn: webSocketTurn, duration: seconds, concurrency: concurrency)
        print("\(name): \(Int(result.requestsPerSecond)) turns/s, \(result.failures) failures")
    }
    nginx.terminate()
    exit(0)
}
// The paths take turns, one second each, for `seconds` rounds: this machine's speed drifts over
// minutes, and back-to-back blocks per path compared different machine states.
let rounds = max(1, Int(seconds.rounded()))
for (phase, interval) in [("paced", 2), ("flat", 0)] where !tunnelOnly {
    simulator.updateAccount("bench") { $0.eventIntervalMilliseconds = interval }
    for (_, port, path, headers) in targets {
        _ = try await runLoad(port: port, path: path, headers: headers, body: body, duration: 1, concurrency: concurrency)  // warm-up
    }
    for _ in 0..<rounds {
        var round: [String: LoadResult] = [:]
        for (name, port, path, headers) in targets {
            // Unpaced rounds last longer: their first and last moments (every connection starting,
            // the last answers draining) would otherwise weigh in.
            let result = try await runLoad(port: port, path: path, headers: headers, body: body, duration: phase == "paced" ? 1 : 2, concurrency: concurrency,
                                           stagger: phase == "paced" ? .milliseconds(80) : .zero)
            round[name] = result
            if phase == "paced" { paced[name] = paced[name]?.merged(with: result) ?? result } else { flat[name] = flat[name]?.merged(with: result) ?? result }
        }
        if phase == "flat" { flatRounds.append(round) }
    }
}
// The same three paths for Responses WebSocket sessions (what Codex uses): turns back to back
// on each session, paced, then unpaced.
var webSocketPaced: [String: LoadResult] = [:], webSocketFlat: [String: LoadResult] = [:]
for (phase, interval) in [("paced", 2), ("flat", 0)] where !tunnelOnly {
    simulator.updateAccount("bench") { $0.eventIntervalMilliseconds = interval }
    for (_, port, path, headers) in targets {
        _ = try await runWebSocketLoad(port: port, path: path, headers: headers, turn: webSocketTurn, duration: 1, concurrency: concurrency)
    }
    for _ in 0..<rounds {
        for (name, port, path, headers) in targets {
            let result = try await runWebSocketLoad(port: port, path: path, headers: headers, turn: webSocketTurn, duration: 1, concurrency: concurrency,
                                                    stagger: phase == "paced" ? .milliseconds(80) : .zero)
            if phase == "paced" {
                webSocketPaced[name] = webSocketPaced[name]?.merged(with: result) ?? result
            } else {
                webSocketFlat[name] = webSocketFlat[name]?.merged(with: result) ?? result
            }
        }
    }
}
nginx.terminate()
nginx.waitUntilExit()
await gateway.shutdown(gracePeriod: .seconds(1))

// The reverse tunnel: a balancer with its own credential and a receiver credential, and a
// connector (its own event loop) that dials in and serves the receiver's streams.
let connectorGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let tunnelToken = Secret("bench-tunnel-token")
let balancerRuntime = try GatewayRuntime(configuration: CodexpoolConfiguration(
    listen: ListenAddress(host: "127.0.0.1", port: 0), upstream: configuration.upstream,
    credentials: [.local(LocalCredentialConfiguration(tag: "vps", credentialPath: authPath)),
                  .external(ExternalCredentialConfiguration(tag: "home", token: tunnelToken, mode: .receiver))],
    users: [UserConfiguration(name: "own", token: Secret("own-token"), credential: "vps"),
            UserConfiguration(name: "tunnel", token: Secret("tunnel-token"), credential: "home", allowExternalUsage: true)]),
    logger: logger, eventLoopGroup: proxyGroup)
await balancerRuntime.start()
let balancer = try await GatewayServer.start(runtime: balancerRuntime)
let connectorRuntime = try GatewayRuntime(configuration: CodexpoolConfiguration(
    listen: ListenAddress(host: "127.0.0.1", port: 0), upstream: configuration.upstream,
    credentials: [.local(LocalCredentialConfiguration(tag: "home", credentialPath: authPath)),
                  .external(ExternalCredentialConfiguration(tag: "to-balancer", token: tunnelToken,
                                                            mode: .connector(EndpointURL(parsing: "http://127.0.0.1:\(balancer.port)")!)))],
    users: [UserConfiguration(name: "balancer", token: tunnelToken, credential: "home")]),
    logger: logger, eventLoopGroup: connectorGroup)
await connectorRuntime.start()
let connector = try await GatewayServer.start(runtime: connectorRuntime)
while balancerRuntime.tunnelHealth["home"]?.online != true { try await Task.sleep(for: .milliseconds(10)) }

simulator.updateAccount("bench") { $0.eventIntervalMilliseconds = 2 }
let tunnelTargets: [(String, String)] = [("balancer's own account", "own-token"), ("through the tunnel", "tunnel-token")]
var tunnelPaced: [String: LoadResult] = [:]
for (_, token) in tunnelTargets {
    _ = try await runLoad(port: balancer.port, path: "/v1/responses", headers: [("authorization", "Bearer \(token)")], body: body, duration: 1, concurrency: concurrency)
}
for _ in 0..<rounds {
    for (name, token) in tunnelTargets {
        let result = try await runLoad(port: balancer.port, path: "/v1/responses", headers: [("authorization", "Bearer \(token)")], body: body,
                                       duration: 1, concurrency: concurrency, stagger: .milliseconds(80))
        tunnelPaced[name] = tunnelPaced[name]?.merged(with: result) ?? result
    }
}
let manyStreams = 1000
let many = try await runLoad(port: balancer.port, path: "/v1/responses", headers: [("authorization", "Bearer tunnel-token")], body: body,
                             duration: seconds, concurrency: manyStreams)
await connector.shutdown(gracePeriod: .seconds(1))
await balancer.shutdown(gracePeriod: .seconds(1))
await simulator.shutdown()
try? FileManager.default.removeItem(at: folder)

// MARK: Report

func ms(_ seconds: Double) -> String { String(format: "%.3f ms", seconds * 1000) }
func ratio(_ value: Double) -> String { String(format: "%.2f×", value) }
if !tunnelOnly {
let direct = paced["simulator directly"]!, pool = paced["through codexpool"]!, proxy = paced["through nginx"]!
let addedP50 = pool.ttfb(0.5) - direct.ttfb(0.5), addedP99 = pool.ttfb(0.99) - direct.ttfb(0.99)
print("### Time to first byte, \(concurrency) concurrent paced streams")
print("")
print("| path | TTFB p50 | TTFB p99 | added p50 | added p99 | turns/s |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for (name, _, _, _) in targets {
    let result = paced[name]!
    print("| \(name) | \(ms(result.ttfb(0.5))) | \(ms(result.ttfb(0.99))) | \(ms(result.ttfb(0.5) - direct.ttfb(0.5))) | \(ms(result.ttfb(0.99) - direct.ttfb(0.99))) | \(Int(result.requestsPerSecond)) |")
}
print("")
print("- codexpool adds p50 \(ms(addedP50)) (target ≤ 0.3 ms: **\(addedP50 <= 0.0003 ? "met" : "not met")**) and p99 \(ms(addedP99)) "
    + "(target ≤ 2 ms: **\(addedP99 <= 0.002 ? "met" : "not met")**); nginx adds p50 \(ms(proxy.ttfb(0.5) - direct.ttfb(0.5))).")
print("")
print("### Capacity, \(concurrency) concurrent streams answered at once")
print("")
print("| path | requests/s | stream MiB/s | TTFB p50 | requests/s vs nginx (median of rounds) |")
print("| --- | ---: | ---: | ---: | ---: |")
let flatPool = flat["through codexpool"]!
func roundRatios(_ name: String) -> [Double] {
    flatRounds.map { $0[name]!.requestsPerSecond / $0["through nginx"]!.requestsPerSecond }
}
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
for (name, _, _, _) in targets {
    let result = flat[name]!
    print("| \(name) | \(Int(result.requestsPerSecond)) | \(String(format: "%.1f", result.mebibytesPerSecond)) | \(ms(result.ttfb(0.5))) | \(ratio(median(roundRatios(name)))) |")
}
let poolRatio = median(roundRatios("through codexpool"))
print("")
print("- Requests/s through codexpool = \(ratio(poolRatio)) nginx's, the median of the rounds' ratios "
    + "(\(roundRatios("through codexpool").map(ratio).joined(separator: ", "))) (target ≥ 1×: **\(poolRatio >= 1 ? "met" : "not met")**).")
print("- Each response is one SSE turn of \(flatPool.bytesPerRequest) bytes in 40 events; \(rounds) rounds of 2 s per path (1 s when paced), the paths taking turns, after a 1 s warm-up each. "
    + "Simulator, proxy and load generator share the machine's cores (one event loop each; nginx with one worker).")
print("")
print("### Responses WebSocket: \(concurrency) concurrent sessions")
print("")
print("The same three paths for WebSocket sessions, as Codex uses them: each session sends a `response.create` as soon as the previous turn's "
    + "`response.completed` arrived; time to first byte is from the turn's message to its first event. codexpool rewrites each turn's "
    + "`codex.rate_limits` event in place and reads its `response.completed`; nginx relays frames unread.")
print("")
print("| path | paced: TTFB p50 | paced: TTFB p99 | paced: added p50 | paced: turns/s | unpaced: turns/s | unpaced: vs nginx |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
let webSocketDirect = webSocketPaced["simulator directly"]!, webSocketNginxFlat = webSocketFlat["through nginx"]!
for (name, _, _, _) in targets {
    let paced = webSocketPaced[name]!, flat = webSocketFlat[name]!
    print("| \(name) | \(ms(paced.ttfb(0.5))) | \(ms(paced.ttfb(0.99))) | \(ms(paced.ttfb(0.5) - webSocketDirect.ttfb(0.5))) | \(Int(paced.requestsPerSecond)) "
        + "| \(Int(flat.requestsPerSecond)) | \(ratio(flat.requestsPerSecond / webSocketNginxFlat.requestsPerSecond)) |")
}
let webSocketFailures = (webSocketPaced.values.map(\.failures) + webSocketFlat.values.map(\.failures)).reduce(0, +)
print("")
print("- \(webSocketFailures) failed sessions or turns; no targets were set for WebSocket: tracked against nginx for regressions.")

}

let own = tunnelPaced["balancer's own account"]!, tunneled = tunnelPaced["through the tunnel"]!
let tunnelAddedP50 = tunneled.ttfb(0.5) - own.ttfb(0.5)
print("")
print("### Reverse tunnel: time to first byte, \(concurrency) concurrent paced streams")
print("")
print("| path | TTFB p50 | TTFB p99 | added p50 | added p99 | turns/s | failed |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (name, _) in tunnelTargets {
    let result = tunnelPaced[name]!
    print("| \(name) | \(ms(result.ttfb(0.5))) | \(ms(result.ttfb(0.99))) | \(ms(result.ttfb(0.5) - own.ttfb(0.5))) | \(ms(result.ttfb(0.99) - own.ttfb(0.99))) | \(Int(result.requestsPerSecond)) | \(result.failures) |")
}
print("")
print("- The tunnel (balancer → yamux stream → connector's full handler → upstream) adds p50 \(ms(tunnelAddedP50)) "
    + "(target ≤ 0.5 ms: **\(tunnelAddedP50 <= 0.0005 ? "met" : "not met")**), on top of the balancer alone.")
print("")
print("### Reverse tunnel: \(manyStreams) concurrent streams through one tunnel")
print("")
print("| streams | turns | failed | turns/s | TTFB p50 | TTFB p99 |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
print("| \(manyStreams) | \(many.requests) | \(many.failures) | \(Int(many.requestsPerSecond)) | \(ms(many.ttfb(0.5))) | \(ms(many.ttfb(0.99))) |")
print("")
print("- \(manyStreams) client connections, each its own yamux stream per turn, paced turns for \(Int(seconds)) s; balancer, connector, "
    + "simulator and load generator on one event loop each.")
