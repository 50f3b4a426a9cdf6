import Foundation

/// The processes a benchmark starts, each with its output in a file, all ended at exit (or when
/// a signal stops the benchmark: the list is locked, as that comes from another thread).
final class ChildProcesses: @unchecked Sendable {
    private var running: [Process] = []
    private let lock = NSLock()
    let folder: URL

    init(folder: URL) {
        self.folder = folder
    }

    /// Starts `executable`; its standard output and error go to `<name>.log` in the folder.
    @discardableResult
    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let log = folder.appendingPathComponent("\(name).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw BenchmarkFailure("cannot create \(log.path)") }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { running.append(process) }
        return process
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: folder.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    /// Asks the process to end, and kills it if it has not after five seconds (a child that
    /// ignores SIGTERM must not keep the benchmark from finishing).
    func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<500 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func stopAll() {
        for process in lock.withLock({ running.reversed() }) { stop(process) }
    }
}

/// CPU time a process (and its children) has used so far, split into user and system time.
struct CPUTime {
    var user: Double
    var system: Double
    var total: Double { user + system }

    static let zero = CPUTime(user: 0, system: 0)

    static func + (a: CPUTime, b: CPUTime) -> CPUTime { CPUTime(user: a.user + b.user, system: a.system + b.system) }
    static func - (a: CPUTime, b: CPUTime) -> CPUTime { CPUTime(user: a.user - b.user, system: a.system - b.system) }
}

/// CPU time (user and system) a process and its children have used, from `/proc`.
enum ProcessCPU {
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Seconds of CPU used so far by `pid` and, with `children`, every process whose parent it is
    /// (nginx's workers).
    static func seconds(_ pid: Int32, children: Bool = false) -> Double {
        time(pid, children: children).total
    }

    /// The same, as user and system time.
    static func time(_ pid: Int32, children: Bool = false) -> CPUTime {
        var pids = [pid]
        if children { pids += childPIDs(of: pid) }
        return pids.reduce(.zero) { $0 + (ticks(of: $1) ?? .zero) }
    }

    /// utime and stime (fields 14 and 15 of /proc/PID/stat, counted after the command's closing parenthesis), in seconds.
    private static func ticks(of pid: Int32) -> CPUTime? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ")": state is field 3, so utime (14) is index 11 and stime (15) index 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return CPUTime(user: user / ticksPerSecond, system: system / ticksPerSecond)
    }

    private static func childPIDs(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }
    }
}
