import Foundation
import TestSupport
import Testing

/// The dashboard in a real browser (Debian's headless Chromium) against a running demo: the live
/// data arrives, the page shows the credentials, the request counts and a chart at 1280 and
/// 390 px, and no script error is logged.
@Suite(.timeLimit(.minutes(3))) struct DashboardBrowserTests {
    static func chromium() throws -> URL {
        let path = try #require(["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                "Chromium is not installed (scripts/test installs Debian's chromium)")
        return URL(fileURLWithPath: path)
    }

    /// Runs headless Chromium on `url` at `width`; returns its standard output and error.
    static func browse(_ url: String, width: Int, arguments: [String], profile: URL) async throws -> (output: String, log: String) {
        let child = ChildProcess(try chromium(), [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
            "--window-size=\(width),1400", "--virtual-time-budget=8000", "--enable-logging=stderr", "--v=0",
        ] + arguments + [url], environment: ["HOME": profile.path])
        try child.start()
        child.closeInput()
        let status = await child.exitStatus(timeout: .seconds(90))
        let output = child.remainingOutput()
        #expect(status == 0, "chromium failed: \(child.standardError.suffix(2000))")
        return (output, child.standardError)
    }

    @Test func theDashboardShowsTheLivePoolInABrowserAtBothWidths() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let demo = ChildProcess(try ChildProcess.codexpoolExecutable, ["demo", "--headless", "--listen", "127.0.0.1:0", "--duration", "120"],
                                mergeOutput: true)
        try demo.start()
        demo.closeInput()
        await demo.waitForStandardError(containing: "Dashboard: ")
        let line = try #require(demo.standardError.split(separator: "\n").first { $0.hasPrefix("Dashboard: ") }, "\(demo.standardError)")
        let url = String(try #require(line.split(separator: " ").dropFirst().first))
        #expect(url.contains("/dashboard#token="))

        for width in [1280, 390] {
            let profile = folder.appendingPathComponent("profile-\(width)")
            let (dom, log) = try await Self.browse(url, width: width, arguments: ["--dump-dom"], profile: profile)
            // The credentials of both nodes, live from the event stream.
            for tag in ["vps-pro", "vps-plus", "home"] { #expect(dom.contains("data-tag=\"\(tag)\""), "\(tag) missing at \(width) px") }
            // The sample sessions, counted.
            let requests = Self.kpi("Requests · 1h", in: dom)
            #expect((requests ?? 0) >= 8, "requests shown: \(requests.map(String.init) ?? "none") at \(width) px")
            // A chart with a line, and recent requests listed.
            #expect(dom.contains("class=\"series\""), "no chart line at \(width) px")
            #expect(dom.contains("data-outcome=\"completed\""), "no recent request at \(width) px")
            #expect(dom.contains("class=\"live on\""), "the live stream did not connect at \(width) px")
            // The demo user's use against their limits.
            #expect(dom.contains("<td>requests_per_day</td>") && dom.contains("<td>cost_per_month</td>"), "no limits table at \(width) px")
            #expect(!log.contains("Uncaught") && !log.contains("ERROR:CONSOLE"), "script error at \(width) px: \(Self.consoleLines(log))")
            let shot = folder.appendingPathComponent("dashboard-\(width).png")
            _ = try await Self.browse(url, width: width, arguments: ["--screenshot=\(shot.path)"], profile: profile)
            let size = (try? FileManager.default.attributesOfItem(atPath: shot.path)[.size] as? NSNumber)?.intValue ?? 0
            #expect(size > 10_000, "screenshot at \(width) px is \(size) bytes")
        }
        demo.terminate()
        _ = await demo.exitStatus()
    }

    /// The number shown above a KPI label (`<b>22</b><span>Requests · 1h</span>`).
    static func kpi(_ label: String, in dom: String) -> Int? {
        guard let labelRange = dom.range(of: "<span>\(label)</span>") else { return nil }
        let before = dom[..<labelRange.lowerBound]
        guard let open = before.range(of: "<b>", options: .backwards) else { return nil }
        let number = before[open.upperBound...].prefix { $0 != "<" }.filter { $0.isNumber }
        return Int(number)
    }

    static func consoleLines(_ log: String) -> String {
        log.split(separator: "\n").filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }.joined(separator: "\n")
    }
}
