import ArgumentParser
import Configuration
import Foundation
import Gateway
import Logging
import NIOHTTP1
import NIOPosix
import UnixSignals

/// `codexpool demo`: the whole topology on one machine with no accounts needed — a simulated
/// Codex backend, a balancer and a connector joined by a TLS tunnel — with sample sessions and
/// the pool's state, live, until Ctrl-C. The Codex CLI can be pointed at it meanwhile.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Try codexpool without accounts: a simulated backend, a balancer and a connector in one process.",
        discussion: """
        Starts a simulated Codex backend with four accounts of different plans and use, a balancer \
        holding two of them and a connector holding the other two, which dials the balancer over \
        TLS (a certificate made on the spot and pinned). Prints a Codex CLI configuration for the \
        balancer, drives a few sample sessions through it, then shows both nodes' credentials live \
        until Ctrl-C. Nothing leaves the machine; nothing is kept afterwards.
        """
    )

    @Option(help: ArgumentHelp("Where the balancer listens for the Codex CLI (port 0: any free port).", valueName: "host:port"))
    var listen = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("Sample sessions to run at start (two turns each).", valueName: "count"))
    var sessions = 8

    @Flag(help: "No live screen: print the results and the pool once (for scripts and tests).")
    var headless = false

    @Option(help: ArgumentHelp("Stop after this many seconds instead of waiting for Ctrl-C.", valueName: "seconds"))
    var duration: Double?

    @Option(help: ArgumentHelp("Log level of the nodes (trace … critical); warnings and worse by default.", valueName: "level"))
    var logLevel = "warning"

    func validate() throws {
        guard ListenAddress(parsing: listen) != nil else { throw ValidationError("--listen must be host:port, such as 127.0.0.1:8080.") }
        guard (0...100).contains(sessions) else { throw ValidationError("--sessions must be between 0 and 100.") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else { throw ValidationError("Unknown log level \"\(logLevel)\".") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .warning
        LoggingSystem.bootstrap { label in
            ServerLogHandler(label: label, level: level)
        }
        // Trapped from the start, so Ctrl-C during the sample sessions still ends the demo
        // cleanly (servers stopped, its folder removed) once they are done.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let fleet: DemoFleet
        do {
            fleet = try await DemoFleet.start(listen: ListenAddress(parsing: listen)!, logger: Logger(label: "codexpool-demo"))
        } catch {
            StandardError.write("codexpool demo: \(error)")
            throw ExitCode(1)
        }
        do {
            try await fleet.waitForTunnel()
        } catch {
            StandardError.write("codexpool demo: \(error)")
            await fleet.shutdown()
            throw ExitCode(1)
        }
        let baseURL = "http://127.0.0.1:\(fleet.codexListener.port)"
        StandardOutput.write(introduction(baseURL: baseURL) + "\n")
        let traffic = DemoTraffic(baseURL: baseURL, simulator: fleet.simulator)
        let results = await traffic.run(sessions: sessions)
        StandardOutput.write(DemoTraffic.report(results) + "\n")
        StandardOutput.write("Dashboard: \(baseURL)/dashboard#token=\(DemoFleet.adminToken) (admin token \(DemoFleet.adminToken))\n")
        // A session every few seconds while the demo runs, so the dashboard's charts move.
        let trickle = sessions == 0 ? nil : Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(3))
                _ = await traffic.run(sessions: 1)
            }
        }

        let balancerStatus = StatusFetcher(url: EndpointURL(parsing: baseURL)!, token: DemoFleet.userToken, tls: nil)
        let connectorStatus = StatusFetcher(url: EndpointURL(parsing: "http://127.0.0.1:\(fleet.connectorListener.port)")!,
                                            token: DemoFleet.tunnelToken, tls: nil)
        let screen = { @Sendable () async -> String in
            let now = Date()
            var text = ""
            for (title, fetcher) in [("balancer (VPS) at \(baseURL), user demo", balancerStatus), ("connector (home), its pool as the balancer sees it", connectorStatus)] {
                do {
                    text += StatusTable.render(try await fetcher.fetch().status, title: title, now: now) + "\n"
                } catch {
                    text += "\(title): \(error)\n\n"
                }
            }
            return text
        }
        StandardOutput.write(await screen())

        let live = headless ? nil : Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                let text = await screen()
                StandardOutput.write("\u{1B}[H\u{1B}[2J" + introduction(baseURL: baseURL, short: true) + "\n" + text + "Ctrl-C stops the demo.\n")
            }
        }
        if !headless { StandardOutput.write("Ctrl-C stops the demo.\n") }
        await waitForStop(signals)
        live?.cancel()
        trickle?.cancel()
        balancerStatus.shutdown()
        connectorStatus.shutdown()
        StandardOutput.write("stopping the demo\n")
        await fleet.shutdown()
    }

    /// Until SIGINT or SIGTERM, or the end of --duration.
    private func waitForStop(_ signals: UnixSignalsSequence) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals { return }
            }
            if let duration {
                group.addTask { try? await Task.sleep(for: .milliseconds(Int(duration * 1000))) }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func introduction(baseURL: String, short: Bool = false) -> String {
        let config = """
        model = "gpt-5.5"
        model_provider = "codexpool-demo"
        [model_providers.codexpool-demo]
        name = "codexpool demo"
        base_url = "\(baseURL)/v1"
        wire_api = "responses"
        experimental_bearer_token = "\(DemoFleet.userToken)"
        supports_websockets = true
        """
        if short {
            return "codexpool demo — Codex CLI base_url \(baseURL)/v1, token \(DemoFleet.userToken) — dashboard \(baseURL)/dashboard#token=\(DemoFleet.adminToken)\n"
        }
        return """
        codexpool demo: a simulated Codex backend with 4 accounts; a balancer (VPS) with vps-pro and vps-plus; \
        a connector (home) with home-pro and home-plus, joined to the balancer by a TLS tunnel (self-signed certificate, pinned).

        Point the Codex CLI at the balancer — put this in $CODEX_HOME/config.toml (e.g. CODEX_HOME=/tmp/codex-demo):

        \(config)

        then run: CODEX_HOME=/tmp/codex-demo codex exec --skip-git-repo-check "say hi"

        """
    }
}
