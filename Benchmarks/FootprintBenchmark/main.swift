// Footprint of codexpool as separate processes: start-up time and idle RSS of `codexpool serve`
// against nginx, memory per idle Responses WebSocket session through codexpool against nginx as a
// WebSocket proxy, and 10,000 idle sessions on a balancer whose accounts sit behind a reverse
// tunnel (balancer and connector as two processes). Prints Markdown for BENCHMARKS.md.
//
// Usage: FootprintBenchmark <codexpool executable> <nginx executable>
//        FootprintBenchmark --simulator   (internal: the simulated backend as its own process)
import Foundation
import NIOCore
import NIOPosix
import UpstreamSimulator

let arguments = CommandLine.arguments
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

// The simulated backend runs in its own process: every session holds a socket there too, and the
// open-file limit (20,000 here) is per process.
if arguments.count > 1, arguments[1] == "--simulator" {
    let simulator = try await UpstreamSimulator.start(accounts: [
        SimulatedAccount(accountID: "vps", planType: "pro", fiveHourPercent: 10, weeklyPercent: 10),
        SimulatedAccount(accountID: "home", planType: "pro", fiveHourPercent: 10, weeklyPercent: 10),
    ], group: group)
    FileHandle.standardOutput.write(Data("\(simulator.port)\n".utf8))
    _ = readLine()  // until the parent closes our input
    await simulator.shutdown()
    exit(0)
}

guard arguments.count > 2 else {
    FileHandle.standardError.write(Data("usage: FootprintBenchmark <codexpool executable> <nginx executable>\n".utf8))
    exit(2)
}
let codexpoolPath = arguments[1]
let nginxPath = arguments[2]
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-footprint-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: folder) }

let simulatorProcess = Process()
simulatorProcess.executableURL = URL(fileURLWithPath: arguments[0])
simulatorProcess.arguments = ["--simulator"]
let simulatorOutput = Pipe(), simulatorInput = Pipe()
simulatorProcess.standardOutput = simulatorOutput
simulatorProcess.standardInput = simulatorInput
try simulatorProcess.run()
let simulatorPort = Int(String(decoding: simulatorOutput.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))!

func authFile(_ account: String) throws -> String {
    let path = folder.appendingPathComponent("\(account).json").path
    // The simulator process has these accounts with their default tokens.
    try SimulatedAccount(accountID: account).authJSON().write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

let upstreamYAML = """
upstream:
  base_url: http://127.0.0.1:\(simulatorPort)/backend-api/codex
  api_base_url: http://127.0.0.1:\(simulatorPort)
  usage_url: http://127.0.0.1:\(simulatorPort)/backend-api/wham/usage
  token_url: http://127.0.0.1:\(simulatorPort)/oauth/token
log:
  level: error
"""

func freePort() async throws -> Int {
    let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

func write(_ text: String, _ name: String) throws -> String {
    let path = folder.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A server process and when it first accepted a connection.
struct Started {
    var process: Process
    var startUp: Double
}

func start(_ executable: String, _ arguments: [String], port: Int) async throws -> Started {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    // `serve` keeps its history (on by default) in the benchmark's folder.
    process.environment = ProcessInfo.processInfo.environment.merging(["XDG_STATE_HOME": folder.appendingPathComponent("state").path]) { _, own in own }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    let begin = ContinuousClock.now
    try process.run()
    while true {
        if (try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get().close()) != nil { break }
        guard process.isRunning else { throw BenchmarkError("\(executable) exited during start-up") }
        guard ContinuousClock.now - begin < .seconds(20) else { throw BenchmarkError("\(executable) did not listen on \(port)") }
        try await Task.sleep(for: .microseconds(200))
    }
    let elapsed = (ContinuousClock.now - begin).components
    return Started(process: process, startUp: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
}

/// SIGTERM for codexpool (it drains and exits); nginx in single-process mode ignores it, so SIGKILL.
func stop(_ process: Process, kill force: Bool = false) {
    if force { kill(process.processIdentifier, SIGKILL) } else { process.terminate() }
    // Not waitUntilExit: on Linux it spins a core while it waits.
    while process.isRunning { usleep(5_000) }
}

/// Resident memory of a process in KiB (VmRSS).
func residentKiB(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return .nan }
    return Double(line.split(separator: " ").dropFirst().first ?? "") ?? .nan
}

func progress(_ text: String) {
    FileHandle.standardError.write(Data("footprint: \(text)\n".utf8))
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: Idle WebSocket sessions

/// Completes once the server's upgrade answer head has arrived, with its status line.
final class UpgradeWatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let answered: EventLoopPromise<String>
    private var head = ""
    private var done = false

    init(answered: EventLoopPromise<String>) { self.answered = answered }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        head += String(buffer: unwrapInboundIn(data))
        if head.contains("\r\n\r\n") {
            done = true
            answered.succeed(String(head.prefix { $0 != "\r" }))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { answered.fail(BenchmarkError("closed before the upgrade answer: \(head.prefix(200))")) }
    }
}

/// Opens `count` Responses WebSocket sessions on `port` and leaves them idle.
func openSessions(_ count: Int, port: Int, token: String?) async throws -> [any Channel] {
    var request = "GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    if let token { request += "Authorization: Bearer \(token)\r\n" }
    let bytes = Array((request + "\r\n").utf8)
    var channels: [any Channel] = []
    channels.reserveCapacity(count)
    var index = 0
    while index < count {
        let batch = min(200, count - index)
        try await withThrowingTaskGroup(of: (any Channel).self) { tasks in
            for _ in 0..<batch {
                tasks.addTask {
                    let promise = group.next().makePromise(of: String.self)
                    let channel = try await ClientBootstrap(group: group)
                        .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UpgradeWatcher(answered: promise)) } }
                        .connect(host: "127.0.0.1", port: port).get()
                    try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
                    let status = try await promise.futureResult.get()
                    guard status.hasPrefix("HTTP/1.1 101") else { throw BenchmarkError("upgrade refused: \(status)") }
                    return channel
                }
            }
            for try await channel in tasks { channels.append(channel) }
        }
        index += batch
    }
    return channels
}

func closeAll(_ channels: [any Channel]) async {
    for channel in channels { channel.close(promise: nil) }
    for channel in channels { try? await channel.closeFuture.get() }
}

/// Polls a condition on a codexpool instance's /metrics text.
func waitForMetrics(port: Int, containing line: String) async throws {
    try await waitForMetrics(port: port, showing: line) { $0.contains(line) }
}

func waitForMetrics(port: Int, showing what: String, _ condition: @Sendable (String) -> Bool) async throws {
    for _ in 0..<400 {
        if let text = try? await fetchMetrics(port: port), condition(text) { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw BenchmarkError("metrics on \(port) never showed \(what)")
}

/// Whether the balancer's metrics show home's 5-hour window well below its cap (the account is at 10 %).
func homeFiveHourUseIsLow(_ metrics: String) -> Bool {
    metrics.split(separator: "\n").contains { line in
        guard line.hasPrefix("codexpool_credential_utilization_ratio{"), line.contains(#"credential="home""#),
              line.contains(#"window="5h""#), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { return false }
        return value < 0.5
    }
}

func fetchMetrics(port: Int) async throws -> String {
    let promise = group.next().makePromise(of: String.self)
    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String>
        var text = ""
        init(_ promise: EventLoopPromise<String>) { self.promise = promise }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { text += String(buffer: unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { promise.succeed(text) }
    }
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collect(promise)) } }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).get()
    return try await promise.futureResult.get()
}

// MARK: Run

// 1. Start-up time and idle RSS, five starts each, medians.
let single = try write("listen: 127.0.0.1:PORT\nlimits:\n  max_connections: 100000\ncredentials:\n  - tag: vps\n    credential_path: \(try authFile("vps"))\n" + upstreamYAML, "single.yaml")
func nginxConfig(port: Int) -> String {
    """
    worker_processes 1;
    master_process off;
    daemon off;
    pid \(folder.path)/nginx.pid;
    error_log \(folder.path)/nginx-error.log error;
    worker_rlimit_nofile 19000;
    events { worker_connections 19000; }
    http {
        access_log off;
        client_body_temp_path \(folder.path)/body;
        proxy_temp_path \(folder.path)/proxy;
        map $http_upgrade $connection_upgrade { default upgrade; '' close; }
        server {
            listen 127.0.0.1:\(port);
            location /v1/ {
                proxy_pass http://127.0.0.1:\(simulatorPort)/backend-api/codex/;
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection $connection_upgrade;
                proxy_set_header Authorization "Bearer access-vps";
                proxy_read_timeout 1h;
                proxy_buffering off;
            }
        }
    }
    """
}

/// The two proxies compared, each started on a free port; nginx in single-process mode ignores
/// SIGTERM, so it is stopped with SIGKILL.
let proxies: [(name: String, killed: Bool, start: (Int) async throws -> Started)] = [
    ("codexpool", false, { port in
        let config = try write(try String(contentsOfFile: single, encoding: .utf8).replacingOccurrences(of: "PORT", with: String(port)), "single-\(port).yaml")
        return try await start(codexpoolPath, ["serve", "--config", config], port: port)
    }),
    ("nginx", true, { port in
        try await start(nginxPath, ["-p", folder.path, "-c", try write(nginxConfig(port: port), "nginx-\(port).conf")], port: port)
    }),
]

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
var starts: [String: [Double]] = [:], idle: [String: [Double]] = [:]
for _ in 0..<5 {
    for proxy in proxies {
        let started = try await proxy.start(try await freePort())
        try await Task.sleep(for: .milliseconds(300))
        starts[proxy.name, default: []].append(started.startUp)
        idle[proxy.name, default: []].append(residentKiB(started.process.processIdentifier))
        stop(started.process, kill: proxy.killed)
    }
}

progress("start-up and idle memory measured")
// 2. Memory per idle WebSocket session, directly through codexpool and through nginx.
let directSessions = 5000
var perSession: [String: Double] = [:]
for proxy in proxies {
    let port = try await freePort()
    let started = try await proxy.start(port)
    _ = try await openSessions(10, port: port, token: nil).map { $0.close(promise: nil) }  // warm-up: first-use allocations
    try await Task.sleep(for: .milliseconds(300))
    let before = residentKiB(started.process.processIdentifier)
    let sessions = try await openSessions(directSessions, port: port, token: nil)
    try await Task.sleep(for: .milliseconds(500))
    progress("\(directSessions) sessions through \(proxy.name) open")
    perSession[proxy.name] = (residentKiB(started.process.processIdentifier) - before) / Double(directSessions)
    await closeAll(sessions)
    stop(started.process, kill: proxy.killed)
}

// 3. 10,000 idle sessions on a balancer whose account is behind a reverse tunnel.
let tunnelSessions = 10_000
let balancerPort = try await freePort(), connectorPort = try await freePort()
let balancerConfig = try write("""
listen: 127.0.0.1:\(balancerPort)
limits:
  max_connections: 100000
credentials:
  - tag: home
    type: external
    reverse: true
    token: footprint-tunnel-token
users:
  - name: laptop
    token: laptop-token
    credential: home
    allow_external_usage: true
\(upstreamYAML)
""", "balancer.yaml")
let connectorConfig = try write("""
listen: 127.0.0.1:\(connectorPort)
limits:
  max_connections: 100000
credentials:
  - tag: home
    credential_path: \(try authFile("home"))
  - tag: to-balancer
    type: external
    reverse: true
    url: http://127.0.0.1:\(balancerPort)
    token: footprint-tunnel-token
users:
  - name: balancer
    token: footprint-tunnel-token
    credential: home
\(upstreamYAML)
""", "connector.yaml")
let balancer = try await start(codexpoolPath, ["serve", "--config", balancerConfig], port: balancerPort)
let connector = try await start(codexpoolPath, ["serve", "--config", connectorConfig], port: connectorPort)
try await waitForMetrics(port: balancerPort, containing: #"codexpool_tunnel_up{credential="home"} 1"#)
// Until the connector's first usage poll answers, its status reads "used up": wait for it to be usable
// and for the balancer to have the connector's figures (10 % used), not the status before the poll.
try await waitForMetrics(port: balancerPort, containing: #"codexpool_credential_usable{credential="home"} 1"#)
try await waitForMetrics(port: balancerPort, showing: "home's 5-hour use from the connector's poll", homeFiveHourUseIsLow)
progress("tunnel up")
_ = try await openSessions(10, port: balancerPort, token: "laptop-token").map { $0.close(promise: nil) }
try await Task.sleep(for: .milliseconds(300))
let balancerBefore = residentKiB(balancer.process.processIdentifier), connectorBefore = residentKiB(connector.process.processIdentifier)
let openStarted = ContinuousClock.now
let many = try await openSessions(tunnelSessions, port: balancerPort, token: "laptop-token")
let openSeconds = Double((ContinuousClock.now - openStarted).components.seconds) + Double((ContinuousClock.now - openStarted).components.attoseconds) / 1e18
try await Task.sleep(for: .milliseconds(500))
let balancerPerSession = (residentKiB(balancer.process.processIdentifier) - balancerBefore) / Double(tunnelSessions)
let connectorPerSession = (residentKiB(connector.process.processIdentifier) - connectorBefore) / Double(tunnelSessions)
let openOnBalancer = try await fetchMetrics(port: balancerPort).split(separator: "\n").first { $0.hasPrefix("codexpool_websocket_sessions_open ") }
await closeAll(many)
stop(connector.process)
stop(balancer.process)
try? simulatorInput.fileHandleForWriting.close()
while simulatorProcess.isRunning { usleep(5_000) }

// MARK: Report

func ratio(_ value: Double) -> String { String(format: "%.2f×", value) }
let startCodexpool = median(starts["codexpool"]!), startNginx = median(starts["nginx"]!)
let idleCodexpool = median(idle["codexpool"]!), idleNginx = median(idle["nginx"]!)
print("### Start-up and idle memory")
print("")
print("| process | start-up to first accepted connection (median of 5) | idle RSS (median of 5) |")
print("| --- | ---: | ---: |")
print("| nginx \(nginxPath) (baseline, one process, `master_process off`) | \(String(format: "%.1f ms", startNginx * 1000)) | \(String(format: "%.1f MiB", idleNginx / 1024)) |")
print("| codexpool serve, one local credential | \(String(format: "%.1f ms", startCodexpool * 1000)) (\(ratio(startCodexpool / startNginx)) nginx) | \(String(format: "%.1f MiB", idleCodexpool / 1024)) (\(ratio(idleCodexpool / idleNginx)) nginx) |")
print("")
print("### Idle Responses WebSocket sessions")
print("")
print("| path | sessions | memory per session | vs nginx |")
print("| --- | ---: | ---: | ---: |")
print("| nginx as a WebSocket proxy (baseline) | \(directSessions) | \(String(format: "%.1f KiB", perSession["nginx"]!)) | 1.00× |")
print("| through codexpool (client and upstream socket per session) | \(directSessions) | \(String(format: "%.1f KiB", perSession["codexpool"]!)) | \(ratio(perSession["codexpool"]! / perSession["nginx"]!)) |")
print("| balancer, account behind the reverse tunnel (client socket + yamux stream) | \(tunnelSessions) | \(String(format: "%.1f KiB", balancerPerSession)) | \(ratio(balancerPerSession / perSession["nginx"]!)) |")
print("| connector, the same sessions (yamux stream + upstream socket) | \(tunnelSessions) | \(String(format: "%.1f KiB", connectorPerSession)) | \(ratio(connectorPerSession / perSession["nginx"]!)) |")
print("")
print("- Memory per session is the growth of the process's RSS while the sessions were opened, divided by their number; "
    + "the \(tunnelSessions) tunnel sessions took \(String(format: "%.1f s", openSeconds)) to open (200 at a time) and the balancer counted "
    + "\(openOnBalancer.map { String($0.split(separator: " ").last ?? "?") } ?? "?") open at the peak.")
print("- Direct sessions are \(directSessions), not 10,000: a direct proxy holds two sockets per session, and this machine allows 20,000 open files per process.")
