import Foundation

/// The share of the machine's CPU time the hypervisor took (steal, from `/proc/stat`) over a
/// stretch of the benchmark. On a virtual machine a noisy neighbour shows here, and in every
/// path's first-byte times at once: the report prints it beside the figures it may have moved.
struct MachineSteal {
    private let steal: Double
    private let total: Double

    /// The counters now.
    init() {
        // The first line: "cpu  user nice system idle iowait irq softirq steal guest guest_nice" (ticks).
        let line = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?.split(separator: "\n").first ?? ""
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        // guest time is counted in user time already.
        steal = ticks.count > 7 ? ticks[7] : .nan
        total = ticks.prefix(8).reduce(0, +)
    }

    /// The fraction of the CPU time since `start` that was stolen (NaN where the kernel does not say).
    func fraction(since start: MachineSteal) -> Double {
        let elapsed = total - start.total
        return elapsed > 0 ? (steal - start.steal) / elapsed : .nan
    }
}
