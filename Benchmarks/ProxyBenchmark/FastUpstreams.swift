import BenchmarkSupport
import Foundation

/// One way to the upstream: its address and, for a proxy, the process whose CPU it costs
/// (`children`: count its child processes too — nginx's workers).
struct Path {
    var name: String
    var port: Int
    var path: String
    var process: (pid: Int32, children: Bool)?
    /// WebSocket only: the load offers permessage-deflate, as the Codex CLI does.
    var offersDeflate = false

    var url: String { "http://127.0.0.1:\(port)\(path)" }
    var cpuTime: CPUTime { process.map { ProcessCPU.time($0.pid, children: $0.children) } ?? .zero }
}

/// A balancer and its connector: the port clients use, and the CPU both processes have used.
struct Tunnel {
    var port: Int
    var processes: [Process]
    var pids: [Int32] { processes.map(\.processIdentifier) }
    var cpuTime: CPUTime { pids.reduce(.zero) { $0 + ProcessCPU.time($1) } }
}

/// The processes of the benchmark and how they are set up.
enum FastUpstreams {
    /// nginx answering from memory with `workers` workers: the fixed turn for `POST /backend-api/codex/responses`
    /// with the rate-limit headers Codex reads, and the usage API.
    static func nginxConfiguration(port: Int, workers: Int, folder: URL) -> String {
        let headers = [("x-codex-primary-used-percent", "10"), ("x-codex-primary-window-minutes", "300"), ("x-codex-primary-reset-at", "4102444800"),
                       ("x-codex-secondary-used-percent", "10"), ("x-codex-secondary-window-minutes", "10080"),
                       ("x-codex-secondary-reset-at", "4102444800"), ("x-codex-plan-type", "pro")]
        // nginx takes at most 4 KB per parameter: the body is set in pieces and joined by `return`.
        let body = Array(CodexTurn.serverSentEvents.utf8)
        let pieces = stride(from: 0, to: body.count, by: 3000).enumerated().map { index, start in
            (name: "turn\(index)", text: String(decoding: body[start..<min(body.count, start + 3000)], as: UTF8.self))
        }
        return """
            worker_processes \(workers);
            daemon off;
            pid \(folder.path)/upstream.pid;
            error_log \(folder.path)/upstream-error.log error;
            events { worker_connections 8192; }
            http {
                access_log off;
                keepalive_requests 100000000;
                keepalive_timeout 300s;
                client_body_temp_path \(folder.path)/upstream-body;
                server {
                    listen 127.0.0.1:\(port) reuseport;
                    location = /backend-api/codex/responses {
                        default_type text/event-stream;
            \(headers.map { "            add_header \($0.0) \($0.1) always;" }.joined(separator: "\n"))
            \(pieces.map { "            set $\($0.name) '\($0.text)';" }.joined(separator: "\n"))
                        return 200 "\(pieces.map { "$" + $0.name }.joined())";
                    }
                    location = /backend-api/wham/usage {
                        default_type application/json;
                        return 200 '\(CodexTurn.usage)';
                    }
                }
            }
            """
    }

    /// nginx as a reverse proxy with keep-alive upstream connections and no buffering, as a
    /// careful operator would set it up in front of the same upstreams.
    static func nginxProxyConfiguration(port: Int, webSocketPort: Int, upstreamPort: Int, webSocketUpstreamPort: Int, workers: Int, folder: URL) -> String {
        """
        worker_processes \(workers);
        daemon off;
        pid \(folder.path)/proxy.pid;
        error_log \(folder.path)/proxy-error.log error;
        events { worker_connections 8192; }
        http {
            access_log off;
            keepalive_requests 100000000;
            keepalive_timeout 300s;
            client_body_temp_path \(folder.path)/proxy-body;
            proxy_temp_path \(folder.path)/proxy-temp;
            map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
            upstream fast { server 127.0.0.1:\(upstreamPort); keepalive 256; keepalive_requests 100000000; }
            upstream fastws { server 127.0.0.1:\(webSocketUpstreamPort); }
            server {
                listen 127.0.0.1:\(port);
                location /v1/ {
                    proxy_pass http://fast/backend-api/codex/;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Authorization "Bearer access-bench";
                    proxy_buffering off;
                }
            }
            server {
                listen 127.0.0.1:\(webSocketPort);
                location /v1/ {
                    proxy_pass http://fastws/backend-api/codex/;
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                    proxy_set_header Authorization "Bearer access-bench";
                    proxy_buffering off;
                    proxy_read_timeout 300s;
                }
            }
        }
        """
    }

    /// `codexpool serve` with one local credential in front of the upstream on `upstreamPort`,
    /// history on (the default), logging warnings only.
    static func startCodexpool(_ name: String, _ codexpool: String, port: Int, upstreamPort: Int, children: ChildProcesses) throws -> Process {
        let folder = children.folder
        let configuration = """
            listen: 127.0.0.1:\(port)
            log: {level: warning}
            storage: {path: \(folder.path)/\(name).sqlite3}
            upstream:
              base_url: http://127.0.0.1:\(upstreamPort)/backend-api/codex
              usage_url: http://127.0.0.1:\(upstreamPort)/backend-api/wham/usage
              token_url: http://127.0.0.1:\(upstreamPort)/oauth/token
            credentials:
              - tag: bench
                credential_path: \(folder.path)/auth.json
            """
        let path = folder.appendingPathComponent("\(name).yaml")
        try configuration.write(to: path, atomically: true, encoding: .utf8)
        return try children.start(name, codexpool, ["serve", "--config", path.path])
    }

    /// A balancer (receiving) and a connector (dialling it, serving from the upstream), as two
    /// processes named after `name`; up once a turn through the balancer is answered (over
    /// WebSocket when the upstream serves that).
    static func startTunnel(_ name: String, _ codexpool: String, upstreamPort: Int, webSocket: Bool = false,
                            children: ChildProcesses) async throws -> Tunnel {
        let folder = children.folder
        let balancerPort = try await freePort(), connectorPort = try await freePort()
        let upstream = """
            upstream:
              base_url: http://127.0.0.1:\(upstreamPort)/backend-api/codex
              usage_url: http://127.0.0.1:\(upstreamPort)/backend-api/wham/usage
              token_url: http://127.0.0.1:\(upstreamPort)/oauth/token
            """
        let balancer = """
            listen: 127.0.0.1:\(balancerPort)
            log: {level: warning}
            storage: {path: \(folder.path)/\(name)-balancer.sqlite3}
            \(upstream)
            credentials:
              - {tag: home, type: external, token: bench-tunnel-token, reverse: true}
            """
        let connector = """
            listen: 127.0.0.1:\(connectorPort)
            log: {level: warning}
            storage: {path: \(folder.path)/\(name)-connector.sqlite3}
            \(upstream)
            credentials:
              - {tag: bench, credential_path: \(folder.path)/auth.json}
              - {tag: vps, type: external, url: http://127.0.0.1:\(balancerPort), token: bench-tunnel-token, reverse: true}
            users:
              - {name: vps, token: bench-tunnel-token, credential: bench}
            """
        let balancerName = "\(name)-balancer", connectorName = "\(name)-connector"
        try balancer.write(to: folder.appendingPathComponent("\(balancerName).yaml"), atomically: true, encoding: .utf8)
        try connector.write(to: folder.appendingPathComponent("\(connectorName).yaml"), atomically: true, encoding: .utf8)
        let balancerProcess = try children.start(balancerName, codexpool, ["serve", "--config", folder.appendingPathComponent("\(balancerName).yaml").path])
        try await waitUntilListening(port: balancerPort)
        let connectorProcess = try children.start(connectorName, codexpool, ["serve", "--config", folder.appendingPathComponent("\(connectorName).yaml").path])
        for _ in 0..<400 {
            let probe = if webSocket {
                try await runWebSocketLoad(port: balancerPort, path: "/v1/responses", headers: [], turn: CodexTurn.webSocketRequest, duration: 0.05, concurrency: 1)
            } else {
                try await runLoad(port: balancerPort, path: "/v1/responses", headers: [], body: CodexTurn.requestBody, duration: 0.05, concurrency: 1)
            }
            if probe.requests > 0, probe.failures == 0 {
                return Tunnel(port: balancerPort, processes: [balancerProcess, connectorProcess])
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw BenchmarkFailure("the tunnel (\(name)) did not come up: \(children.log(balancerName))\n\(children.log(connectorName))")
    }

    /// Every path answers a turn in full before anything is measured.
    static func ensureAnswers(_ http: [Path], _ webSocket: [Path]) async throws {
        for path in http {
            let probe = try await runLoad(port: path.port, path: path.path, headers: [], body: CodexTurn.requestBody, duration: 0.2, concurrency: 1)
            guard probe.requests > 0, probe.failures == 0, probe.bytesPerRequest > 4000 else {
                throw BenchmarkFailure("\(path.name) (HTTP) does not answer a turn: \(probe.requests) answers, \(probe.failures) failures")
            }
        }
        for path in webSocket {
            let probe = try await runWebSocketLoad(port: path.port, path: path.path, headers: [], turn: CodexTurn.webSocketRequest, duration: 0.2, concurrency: 1,
                                                   offersDeflate: path.offersDeflate)
            guard probe.requests > 0, probe.failures == 0 else {
                throw BenchmarkFailure("\(path.name) (WebSocket) does not answer a turn: \(probe.requests) answers, \(probe.failures) failures")
            }
        }
    }
}
