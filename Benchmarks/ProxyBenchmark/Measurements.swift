import BenchmarkSupport
import Foundation

/// One path in one round: its rate, and the CPU its proxy process used for it.
struct Measurement {
    var rate: Double
    var count: Int
    var cpu: CPUTime
    var failures: Int
    /// The upstream's CPU over the round's wall time: 1.0 is one core kept busy.
    var upstreamBusy: Double = .nan

    /// Microseconds of CPU per request or turn: user and system time, and each.
    var cpuPerRequest: Double { perRequest(cpu.total) }
    var userPerRequest: Double { perRequest(cpu.user) }
    var systemPerRequest: Double { perRequest(cpu.system) }

    private func perRequest(_ seconds: Double) -> Double { count > 0 ? seconds / Double(count) * 1e6 : .nan }
}

/// What one run of a load served, over how long.
struct LoadRun {
    var rate: Double
    var count: Int
    var failures: Int
    var seconds: Double
}

/// Rounds of measurements, the paths taking turns; figures are medians over rounds, ratios are
/// taken within each round (the paths ran seconds apart there) and their median reported.
struct Measurements {
    var rounds: [[String: Measurement]] = []
    /// The hypervisor's share of the machine's CPU time while these rounds and the paced runs
    /// after them ran (`MachineSteal`).
    var machineSteal = Double.nan

    func median(_ name: String, _ value: (Measurement) -> Double) -> Double {
        Self.median(rounds.compactMap { $0[name].map(value) })
    }

    /// The median over rounds of `value(a) / value(b)`.
    func ratio(_ a: String, _ b: String, _ value: (Measurement) -> Double) -> Double {
        Self.median(rounds.compactMap { round in
            guard let first = round[a], let second = round[b] else { return nil }
            return value(first) / value(second)
        })
    }

    func failures(_ name: String) -> Int {
        rounds.reduce(0) { $0 + ($1[name]?.failures ?? 0) }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.filter { !$0.isNaN }.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// `paths` under one load: a warm-up run each (the first seconds grow buffers, caches and the
    /// history file), `rounds` rounds with the paths taking turns, then the paced runs; the
    /// machine's steal over all of it. `cpuTime` is what a path's CPU is read from; with
    /// `upstreamSeconds`, the upstream's CPU seconds so far, each round notes how busy it kept it.
    static func measure(_ paths: [Path], rounds: Int, cpuTime: (Path) -> CPUTime = \.cpuTime, upstreamSeconds: (() -> Double)? = nil,
                        load: (Path) async throws -> LoadRun, paced: (Path) async throws -> LoadResult) async throws -> (Self, [String: LoadResult]) {
        var capacity = Measurements()
        let start = MachineSteal()
        for path in paths { _ = try await load(path) }
        for _ in 0..<rounds {
            var round: [String: Measurement] = [:]
            for path in paths {
                let before = cpuTime(path), upstreamBefore = upstreamSeconds?()
                let run = try await load(path)
                var measured = Measurement(rate: run.rate, count: run.count, cpu: cpuTime(path) - before, failures: run.failures)
                if let upstreamSeconds, let upstreamBefore { measured.upstreamBusy = (upstreamSeconds() - upstreamBefore) / run.seconds }
                round[path.name] = measured
            }
            capacity.rounds.append(round)
        }
        let pacedResults = try await Self.paced(paths, rounds: rounds, paced)
        capacity.machineSteal = MachineSteal().fraction(since: start)
        return (capacity, pacedResults)
    }

    /// Paced latency: `rounds` one-second runs per path, taking turns; all rounds' first-byte times
    /// pooled per path.
    static func paced(_ paths: [Path], rounds: Int, _ run: (Path) async throws -> LoadResult) async throws -> [String: LoadResult] {
        var results: [String: LoadResult] = [:]
        for path in paths { _ = try await run(path) }
        for _ in 0..<rounds {
            for path in paths {
                let result = try await run(path)
                results[path.name] = results[path.name]?.merged(with: result) ?? result
            }
        }
        return results
    }
}
