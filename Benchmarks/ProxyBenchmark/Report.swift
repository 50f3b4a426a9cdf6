import BenchmarkSupport
import Foundation
import Zlib

/// The Markdown for BENCHMARKS.md, with the targets of issue #19 and whether each is met.
enum Report {
    static let direct = "upstream directly", codexpool = "through codexpool", nginx = "through nginx", tunnel = "through the tunnel"
    static let pipe = "NIO byte pipe (floor)"
    static let codexpoolDeflate = "through codexpool, client offering permessage-deflate"

    static func markdown(http: (Measurements, [String: LoadResult]), webSocket: (Measurements, [String: LoadResult]),
                         tunnel: (Measurements, [String: LoadResult]), webSocketTunnel: (Measurements, [String: LoadResult]),
                         seconds: Int, rounds: Int, connections: Int, proxyThreads: Int) -> String {
        var lines: [String] = []
        lines.append("The turn: \(CodexTurn.serverSentEvents.utf8.count) bytes of SSE in \(CodexTurn.events(rateLimits: false).count) events over HTTP, "
            + "\(CodexTurn.webSocketLines.utf8.count) bytes in \(CodexTurn.events(rateLimits: true).count) messages over WebSocket.")
        lines.append("\(rounds) interleaved rounds of \(seconds) s per path, \(connections) connections; figures are medians over the rounds, ratios are taken within")
        lines.append("each round. CPU is user + system time of the proxy's processes (codexpool: one process with \(proxyThreads) event-loop threads; nginx:")
        lines.append("master and \(proxyThreads) workers) from `/proc`, divided by the requests or turns served in the round; user and system time are")
        lines.append("also shown apart (each its own median). Paced: every connection waits 20 ms between requests (about \(connections * 45) per")
        lines.append("second in all); added = the path's first-byte time minus the upstream's.")
        lines.append("")
        lines += section("HTTP: `POST /v1/responses`, one SSE turn (load: wrk)", http, unit: "request", load: "wrk",
                         upstreamNote: "nginx, \(proxyThreads) workers", upstreamCores: proxyThreads)
        lines.append("")
        lines += section("Responses WebSocket: one turn per `response.create` (load: our generator)", webSocket, unit: "turn", load: "our generator",
                         upstreamNote: "Go, both cores available to it", upstreamCores: proxyThreads)
        lines.append("")
        lines.append("### Reverse tunnel: a balancer whose credential is a connector's")
        lines.append("")
        lines.append("The balancer and the connector are two `codexpool serve` processes on this machine, the connector serving from the same")
        lines.append("fast upstream; the tunnel's CPU is both processes' together. The comparison is one codexpool serving that upstream")
        lines.append("itself (no target; tracked); added = the tunnel's first-byte time minus that codexpool's.")
        lines.append("")
        lines += tunnelSection("HTTP (load: wrk)", tunnel, unit: "request")
        lines.append("")
        lines += tunnelSection("Responses WebSocket (load: our generator)", webSocketTunnel, unit: "turn")
        return lines.joined(separator: "\n")
    }

    private static func section(_ title: String, _ measured: (Measurements, [String: LoadResult]), unit: String, load: String,
                                upstreamNote: String, upstreamCores: Int) -> [String] {
        let (capacity, paced) = measured
        var lines = ["### \(title)", ""]
        lines.append("| path | \(unit)s/s | CPU per \(unit) | of it user + system | paced: first byte p50 | paced: p99 | paced: added p50 | paced: added p99 | failures |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        let baseline = paced[direct]
        for name in [direct, codexpool, codexpoolDeflate, nginx, pipe] where capacity.rounds.first?[name] != nil {
            let rate = capacity.median(name) { $0.rate }
            let cpu = name == direct ? "–" : String(format: "%.1f µs", capacity.median(name) { $0.cpuPerRequest })
            let split = name == direct ? "–" : String(format: "%.1f + %.1f µs", capacity.median(name) { $0.userPerRequest }, capacity.median(name) { $0.systemPerRequest })
            let result = paced[name]
            let p50 = result.map { $0.ttfb(0.5) * 1000 } ?? .nan, p99 = result.map { $0.ttfb(0.99) * 1000 } ?? .nan
            let added50 = p50 - (baseline.map { $0.ttfb(0.5) * 1000 } ?? .nan), added99 = p99 - (baseline.map { $0.ttfb(0.99) * 1000 } ?? .nan)
            lines.append("| \(name) | \(Int(rate.rounded())) | \(cpu) | \(split) | \(ms(p50)) | \(ms(p99)) | \(name == direct ? "–" : ms(added50)) | \(name == direct ? "–" : ms(added99)) | "
                + "\(capacity.failures(name) + (result?.failures ?? 0)) |")
        }
        lines.append("")
        // The direct path is limited by the load generator, which shares the two cores with the
        // upstream; what the upstream itself can serve follows from its CPU per request there.
        let perCore = Measurements.median(capacity.rounds.compactMap { round in
            guard let upstream = round[direct], let proxied = round[codexpool], let other = round[nginx] else { return nil }
            return upstream.rate / upstream.upstreamBusy * Double(upstreamCores) / max(proxied.rate, other.rate)
        })
        let upstreamCPU = capacity.median(direct) { $0.upstreamBusy / $0.rate * 1e6 }
        let measured = min(capacity.ratio(direct, codexpool) { $0.rate }, capacity.ratio(direct, nginx) { $0.rate })
        let busy = max(capacity.median(codexpool) { $0.upstreamBusy }, capacity.median(nginx) { $0.upstreamBusy })
        lines.append("- Upstream headroom: the upstream costs \(String(format: "%.1f", upstreamCPU)) µs of CPU per \(unit), so with as many cores as "
            + "the proxies have (\(upstreamCores)) it serves "
            + "\(x(perCore)) the faster proxy's \(unit)s/s (needed ≥ 3×: \(met(perCore >= 3))). Measured directly it served \(x(measured)) of it, "
            + "as fast as the load generator (\(load), on the same two cores) drives it; while a proxy ran, the upstream used at most "
            + "\(String(format: "%.0f", busy * 100)) % of a core (\(upstreamNote)).")
        let rateRatio = capacity.ratio(codexpool, nginx) { $0.rate }
        lines.append("- \(unit.capitalized)s/s through codexpool = \(x(rateRatio)) nginx's (target ≥ 1.0×: \(met(rateRatio >= 1))).")
        let cpuRatio = capacity.ratio(codexpool, nginx) { $0.cpuPerRequest }
        lines.append("- CPU per \(unit): codexpool \(x(cpuRatio)) nginx's (target ≤ 1.5×: \(met(cpuRatio <= 1.5))); its user time "
            + "\(x(capacity.ratio(codexpool, nginx) { $0.userPerRequest })) nginx's, its system time \(x(capacity.ratio(codexpool, nginx) { $0.systemPerRequest })).")
        if capacity.rounds.first?[codexpoolDeflate] != nil {
            let threshold = PerMessageDeflate.minimumCompressedSize
            let longest = CodexTurn.events(rateLimits: true).map(\.utf8.count).max() ?? 0
            lines.append("- With permessage-deflate offered, as the Codex CLI offers it: codexpool agrees and compresses the messages of "
                + "\(threshold) bytes or more that it sends the client, and sends shorter ones as they are (this turn's longest is \(longest) "
                + "bytes: the text's done event, the finished item and the completed response carry the whole text) — "
                + "\(String(format: "%.1f", capacity.median(codexpoolDeflate) { $0.cpuPerRequest })) µs per \(unit), "
                + "\(x(capacity.ratio(codexpoolDeflate, nginx) { $0.cpuPerRequest })) nginx's (which passes the offer on to the upstream; "
                + "this one declines it, so nginx relays the messages uncompressed). The targets above are for the row without it.")
        }
        if capacity.rounds.first?[pipe] != nil {
            let floor = capacity.median(pipe) { $0.cpuPerRequest }, above = capacity.median(codexpool) { $0.cpuPerRequest } - floor
            lines.append("- The floor: NIO piping the same bytes between each client connection and an upstream connection of its own (no HTTP, "
                + "no pooling, no accounting) costs \(String(format: "%.1f", floor)) µs per \(unit), \(x(capacity.ratio(pipe, nginx) { $0.cpuPerRequest })) "
                + "nginx's; codexpool's own work is the \(String(format: "%.1f", above)) µs above it.")
        }
        if let codexpoolPaced = paced[codexpool], let baseline {
            let added = (codexpoolPaced.ttfb(0.5) - baseline.ttfb(0.5)) * 1000
            lines.append("- Paced added p50 through codexpool: \(ms(added)) (target ≤ 0.3 ms: \(met(added <= 0.3))).")
        }
        lines.append(stealLine(capacity.machineSteal))
        return lines
    }

    /// What the hypervisor took while a section ran: on a quiet stretch next to nothing; where it
    /// is more, every path's first-byte times and the rounds spread more than usual.
    private static func stealLine(_ fraction: Double) -> String {
        "- The machine while this section ran: \(fraction.isNaN ? "steal time not reported" : String(format: "%.1f %%", fraction * 100) + " of its CPU time taken by the hypervisor (steal, `/proc/stat`)")"
            + "; a noisy stretch shows here and in every path's first-byte times at once."
    }

    private static func tunnelSection(_ title: String, _ measured: (Measurements, [String: LoadResult]), unit: String) -> [String] {
        let (capacity, paced) = measured
        var lines = ["#### \(title)", ""]
        lines.append("| path | \(unit)s/s | CPU per \(unit) | paced: first byte p50 | paced: p99 | paced: added p50 | paced: added p99 | failures |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        let baseline = paced[codexpool]
        for name in [codexpool, tunnel] {
            let result = paced[name]
            let p50 = result.map { $0.ttfb(0.5) * 1000 } ?? .nan, p99 = result.map { $0.ttfb(0.99) * 1000 } ?? .nan
            let added50 = p50 - (baseline.map { $0.ttfb(0.5) * 1000 } ?? .nan), added99 = p99 - (baseline.map { $0.ttfb(0.99) * 1000 } ?? .nan)
            lines.append("| \(name) | \(Int(capacity.median(name) { $0.rate }.rounded())) | \(String(format: "%.1f µs", capacity.median(name) { $0.cpuPerRequest })) | "
                + "\(ms(p50)) | \(ms(p99)) | \(name == codexpool ? "–" : ms(added50)) | \(name == codexpool ? "–" : ms(added99)) | "
                + "\(capacity.failures(name) + (result?.failures ?? 0)) |")
        }
        lines.append("")
        lines.append("- Through the tunnel: \(x(capacity.ratio(tunnel, codexpool) { $0.rate })) the \(unit)s/s and "
            + "\(x(capacity.ratio(tunnel, codexpool) { $0.cpuPerRequest })) the CPU per \(unit) of one codexpool.")
        lines.append(stealLine(capacity.machineSteal))
        return lines
    }

    static func ms(_ value: Double) -> String { value.isNaN ? "–" : String(format: "%.3f ms", value) }
    static func x(_ value: Double) -> String { value.isNaN ? "–" : String(format: "%.2f×", value) }
    static func met(_ condition: Bool) -> String { condition ? "met" : "**not met**" }
}
