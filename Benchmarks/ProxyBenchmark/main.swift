// Proxy cost measured against an upstream that is never the bottleneck: nginx answering every
// `POST …/responses` with a fixed Codex SSE turn from memory (and a small Go server doing the same
// for the Responses WebSocket). Three paths under the same load, in interleaved rounds — the
// upstream directly, through codexpool (`serve`, its own process, one local credential, history
// on as by default), and through nginx as a reverse proxy with as many workers as codexpool has
// event-loop threads — then the reverse tunnel (a balancer and a connector, two processes).
// Reports requests/s, CPU time per request (user + system from /proc) and paced added latency,
// with the targets of issue #19. Prints Markdown for BENCHMARKS.md.
//
// Beside them, a byte pipe on NIO (its own process) shows the floor under any relay on NIO.
//
// Usage: ProxyBenchmark <codexpool> <nginx> <wrk> <wsupstream> [seconds per round] [rounds]
//        ProxyBenchmark byte-pipe <port> <upstream port>   (started by the benchmark itself)
//        ProxyBenchmark websocket-load <port> <seconds> [sessions] [pause ms] [deflate]
//                                        (64 sessions by default sending turns back to back to /v1/responses,
//                                         offering permessage-deflate with "deflate",
//                                         or pausing between turns; prints turns, failures, seconds, and when
//                                         paced the first byte's p50 and p99 in ms)
import BenchmarkSupport
import Foundation
import NIOCore
import UpstreamSimulator

let arguments = CommandLine.arguments
/// Concurrent connections (or WebSocket sessions) of every load.
let connections = 64
if arguments.count == 4, arguments[1] == "byte-pipe", let port = Int(arguments[2]), let upstreamPort = Int(arguments[3]) {
    try BytePipe.run(port: port, upstreamPort: upstreamPort)
}
if (4...7).contains(arguments.count), arguments[1] == "websocket-load", let port = Int(arguments[2]), let seconds = Double(arguments[3]) {
    // A load of its own process, for comparing builds by hand with the CPU they use meanwhile;
    // with a pause, paced as the benchmark's latency runs are (its first-byte times added).
    let sessions = arguments.count > 4 ? Int(arguments[4]) ?? connections : connections
    let pause = arguments.count > 5 ? Int64(arguments[5]) ?? 0 : 0
    let result = try await runWebSocketLoad(port: port, path: "/v1/responses", headers: [], turn: CodexTurn.webSocketRequest, duration: seconds,
                                            concurrency: sessions, stagger: .milliseconds(pause), pause: .milliseconds(pause),
                                            offersDeflate: arguments.count > 6 && arguments[6] == "deflate")
    print(result.requests, result.failures, result.duration, pause > 0 ? String(format: "%.3f %.3f", result.ttfb(0.5) * 1000, result.ttfb(0.99) * 1000) : "")
    exit(0)
}
guard arguments.count >= 5 else {
    FileHandle.standardError.write(Data("usage: ProxyBenchmark <codexpool> <nginx> <wrk> <wsupstream> [seconds per round] [rounds]\n".utf8))
    exit(2)
}
let (codexpool, nginx, wrk, wsUpstream) = (arguments[1], arguments[2], arguments[3], arguments[4])
let seconds = arguments.count > 5 ? Int(arguments[5]) ?? 3 : 3
let rounds = arguments.count > 6 ? Int(arguments[6]) ?? 5 : 5
/// `codexpool serve` runs one event loop per core; nginx gets as many workers.
let proxyThreads = ProcessInfo.processInfo.activeProcessorCount

let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-proxybench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
let children = ChildProcesses(folder: folder)
/// Ends every process the benchmark started and removes its folder: at the end, on a signal,
/// after a hold.
@Sendable func endEverything() {
    children.stopAll()
    try? FileManager.default.removeItem(at: folder)
}
defer { endEverything() }
// Stopped by a signal (an operator's kill, CI's timeout), the benchmark still ends what it started:
// nginx, codexpool and the pipes would otherwise keep their ports and the CPU.
let stopSignals = [SIGTERM, SIGINT, SIGHUP].map { number in
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler {
        endEverything()
        exit(128 + number)
    }
    source.resume()
    return source
}

// The fast upstreams.
let upstreamPort = try await freePort(), webSocketUpstreamPort = try await freePort()
try FastUpstreams.nginxConfiguration(port: upstreamPort, workers: proxyThreads, folder: folder).write(to: folder.appendingPathComponent("upstream.conf"), atomically: true, encoding: .utf8)
let upstream = try children.start("upstream", nginx, ["-p", folder.path, "-c", folder.appendingPathComponent("upstream.conf").path])
try CodexTurn.webSocketLines.write(to: folder.appendingPathComponent("turn.jsonl"), atomically: true, encoding: .utf8)
let webSocketUpstream = try children.start("wsupstream", wsUpstream, [String(webSocketUpstreamPort), folder.appendingPathComponent("turn.jsonl").path])

// The proxies: codexpool for HTTP and for WebSocket (one process each, so each phase's CPU is its
// own), nginx with both.
let codexpoolPort = try await freePort(), codexpoolWebSocketPort = try await freePort()
let nginxPort = try await freePort(), nginxWebSocketPort = try await freePort()
try SimulatedAccount(accountID: "bench", planType: "pro").authJSON().write(to: folder.appendingPathComponent("auth.json"), atomically: true, encoding: .utf8)
let httpProxy = try FastUpstreams.startCodexpool("codexpool-http", codexpool, port: codexpoolPort, upstreamPort: upstreamPort, children: children)
let webSocketProxy = try FastUpstreams.startCodexpool("codexpool-ws", codexpool, port: codexpoolWebSocketPort, upstreamPort: webSocketUpstreamPort,
                                                      children: children)
try FastUpstreams.nginxProxyConfiguration(port: nginxPort, webSocketPort: nginxWebSocketPort, upstreamPort: upstreamPort,
                                          webSocketUpstreamPort: webSocketUpstreamPort, workers: proxyThreads, folder: folder)
    .write(to: folder.appendingPathComponent("proxy.conf"), atomically: true, encoding: .utf8)
let nginxProxy = try children.start("proxy", nginx, ["-p", folder.path, "-c", folder.appendingPathComponent("proxy.conf").path])
let pipePort = try await freePort(), webSocketPipePort = try await freePort()
guard let benchmarkExecutable = Bundle.main.executablePath else { throw BenchmarkFailure("cannot tell where this executable is") }
let pipe = try children.start("pipe", benchmarkExecutable, ["byte-pipe", String(pipePort), String(upstreamPort)])
let webSocketPipe = try children.start("wspipe", benchmarkExecutable, ["byte-pipe", String(webSocketPipePort), String(webSocketUpstreamPort)])
for (name, port) in [("upstream", upstreamPort), ("wsupstream", webSocketUpstreamPort), ("codexpool-http", codexpoolPort),
                     ("codexpool-ws", codexpoolWebSocketPort), ("proxy", nginxPort), ("proxy", nginxWebSocketPort), ("pipe", pipePort),
                     ("wspipe", webSocketPipePort)] {
    do {
        try await waitUntilListening(port: port)
    } catch {
        throw BenchmarkFailure("\(name) is not listening on \(port): \(children.log(name))")
    }
}

let script = folder.appendingPathComponent("post.lua").path
try Wrk.script(body: CodexTurn.requestBody).write(toFile: script, atomically: true, encoding: .utf8)
let httpPaths = [
    Path(name: "upstream directly", port: upstreamPort, path: "/backend-api/codex/responses", process: nil),
    Path(name: "through codexpool", port: codexpoolPort, path: "/v1/responses", process: (httpProxy.processIdentifier, false)),
    Path(name: "through nginx", port: nginxPort, path: "/v1/responses", process: (nginxProxy.processIdentifier, true)),
    Path(name: Report.pipe, port: pipePort, path: "/backend-api/codex/responses", process: (pipe.processIdentifier, false)),
]
let webSocketPaths = [
    Path(name: "upstream directly", port: webSocketUpstreamPort, path: "/backend-api/codex/responses", process: nil),
    Path(name: "through codexpool", port: codexpoolWebSocketPort, path: "/v1/responses", process: (webSocketProxy.processIdentifier, false)),
    Path(name: Report.codexpoolDeflate, port: codexpoolWebSocketPort, path: "/v1/responses", process: (webSocketProxy.processIdentifier, false),
         offersDeflate: true),
    Path(name: "through nginx", port: nginxWebSocketPort, path: "/v1/responses", process: (nginxProxy.processIdentifier, true)),
    Path(name: Report.pipe, port: webSocketPipePort, path: "/backend-api/codex/responses", process: (webSocketPipe.processIdentifier, false)),
]
try await FastUpstreams.ensureAnswers(httpPaths, webSocketPaths)
// PROXY_BENCHMARK_HOLD=<seconds>: set up, say where everything is, and wait (to profile by hand);
// with PROXY_BENCHMARK_WEBSOCKET_LOAD=codexpool|nginx, keep WebSocket turns going through that path meanwhile;
// with PROXY_BENCHMARK_TUNNEL=1, also start the reverse tunnels (a balancer and a connector each, for HTTP and for WebSocket)
// and say where they are.
if let hold = ProcessInfo.processInfo.environment["PROXY_BENCHMARK_HOLD"].flatMap(Int.init) {
    // Written straight to the pipe: it is read while this waits.
    var lines = (httpPaths + webSocketPaths).map { "\($0.url) pid \($0.process.map { String($0.pid) } ?? "-")\n" }.joined()
    if ProcessInfo.processInfo.environment["PROXY_BENCHMARK_TUNNEL"] != nil {
        let tunnel = try await FastUpstreams.startTunnel("tunnel", codexpool, upstreamPort: upstreamPort, children: children)
        lines += "tunnel: http://127.0.0.1:\(tunnel.port)/v1/responses pids \(tunnel.pids.map(String.init).joined(separator: " "))\n"
        let webSocketTunnel = try await FastUpstreams.startTunnel("wstunnel", codexpool, upstreamPort: webSocketUpstreamPort, webSocket: true, children: children)
        lines += "websocket tunnel: http://127.0.0.1:\(webSocketTunnel.port)/v1/responses pids \(webSocketTunnel.pids.map(String.init).joined(separator: " "))\n"
    }
    lines += "wrk script: \(script)\n"
    FileHandle.standardOutput.write(Data(lines.utf8))
    if let load = ProcessInfo.processInfo.environment["PROXY_BENCHMARK_WEBSOCKET_LOAD"], let path = webSocketPaths.first(where: { $0.name.hasSuffix(load) }) {
        let result = try await runWebSocketLoad(port: path.port, path: path.path, headers: [], turn: CodexTurn.webSocketRequest, duration: Double(hold),
                                                concurrency: connections)
        FileHandle.standardOutput.write(Data("\(path.name): \(Int(result.requestsPerSecond)) turns/s, \(result.failures) failures\n".utf8))
    } else {
        try await Task.sleep(for: .seconds(hold))
    }
    endEverything()
    exit(0)
}

/// wrk through `path` for a round.
func httpRound(_ path: Path) throws -> LoadRun {
    let result = try Wrk.run(wrk, url: path.url, connections: connections, seconds: seconds, script: script)
    return LoadRun(rate: result.requestsPerSecond, count: result.requests, failures: result.failures, seconds: result.seconds)
}

/// Connections pausing 20 ms between requests through `path`, for a second.
func httpPacedRun(_ path: Path) async throws -> LoadResult {
    try await runLoad(port: path.port, path: path.path, headers: [], body: CodexTurn.requestBody, duration: 1, concurrency: connections,
                      stagger: .milliseconds(20), pause: .milliseconds(20))
}

// HTTP: wrk, the paths taking turns, then paced.
let (httpCapacity, httpPaced) = try await Measurements.measure(
    httpPaths, rounds: rounds, upstreamSeconds: { ProcessCPU.seconds(upstream.processIdentifier, children: true) }, load: httpRound, paced: httpPacedRun)

/// Sessions sending turns back to back through `path` for a round.
func webSocketRound(_ path: Path) async throws -> LoadRun {
    let result = try await runWebSocketLoad(port: path.port, path: path.path, headers: [], turn: CodexTurn.webSocketRequest, duration: Double(seconds),
                                            concurrency: connections, offersDeflate: path.offersDeflate)
    return LoadRun(rate: result.requestsPerSecond, count: result.requests, failures: result.failures, seconds: result.duration)
}

/// Sessions pausing 20 ms between turns through `path`, for a second.
func webSocketPacedRun(_ path: Path) async throws -> LoadResult {
    try await runWebSocketLoad(port: path.port, path: path.path, headers: [], turn: CodexTurn.webSocketRequest, duration: 1, concurrency: connections,
                               stagger: .milliseconds(20), pause: .milliseconds(20), offersDeflate: path.offersDeflate)
}

// WebSocket: sessions sending turns back to back (capacity), then paced.
let (webSocketCapacity, webSocketPaced) = try await Measurements.measure(
    webSocketPaths, rounds: rounds, upstreamSeconds: { ProcessCPU.seconds(webSocketUpstream.processIdentifier) }, load: webSocketRound, paced: webSocketPacedRun)

// The reverse tunnel: a balancer whose only credential is a connector's, which serves it from the
// fast upstream; against one codexpool serving that upstream itself (the tunnel's CPU from both
// of its processes). HTTP, then WebSocket.
let tunnel = try await FastUpstreams.startTunnel("tunnel", codexpool, upstreamPort: upstreamPort, children: children)
let tunnelMeasured = try await Measurements.measure(
    [Path(name: Report.codexpool, port: codexpoolPort, path: "/v1/responses", process: (httpProxy.processIdentifier, false)),
     Path(name: Report.tunnel, port: tunnel.port, path: "/v1/responses", process: nil)],
    rounds: rounds, cpuTime: { $0.process == nil ? tunnel.cpuTime : $0.cpuTime }, load: httpRound, paced: httpPacedRun)
for process in tunnel.processes { children.stop(process) }

let webSocketTunnel = try await FastUpstreams.startTunnel("wstunnel", codexpool, upstreamPort: webSocketUpstreamPort, webSocket: true, children: children)
let webSocketTunnelMeasured = try await Measurements.measure(
    [Path(name: Report.codexpool, port: codexpoolWebSocketPort, path: "/v1/responses", process: (webSocketProxy.processIdentifier, false)),
     Path(name: Report.tunnel, port: webSocketTunnel.port, path: "/v1/responses", process: nil)],
    rounds: rounds, cpuTime: { $0.process == nil ? webSocketTunnel.cpuTime : $0.cpuTime }, load: webSocketRound, paced: webSocketPacedRun)

print(Report.markdown(http: (httpCapacity, httpPaced), webSocket: (webSocketCapacity, webSocketPaced), tunnel: tunnelMeasured,
                      webSocketTunnel: webSocketTunnelMeasured,
                      seconds: seconds, rounds: rounds, connections: connections, proxyThreads: proxyThreads))
