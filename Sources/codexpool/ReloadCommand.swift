import ArgumentParser
import NIOHTTP1
import PoolCore

/// `codexpool reload`: asks a running instance to re-read its configuration file, as SIGHUP
/// does, and prints what changed — or why nothing did.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Make a running codexpool re-read its configuration file (admin users; the same as SIGHUP).",
        discussion: """
        Credentials and users added, removed or changed take effect without a restart: open sessions \
        and requests finish where they are, new ones see the new file. The listener moves and the TLS \
        certificate is re-read. When the file has a mistake, nothing changes and the error is printed.
        """
    )

    @OptionGroup var instance: InstanceOptions

    func run() async throws {
        let client = try instance.client(command: "reload")
        defer { client.shutdown() }
        let body: [UInt8]
        do {
            body = try await client.call(.POST, "/api/v1/reload")
        } catch {
            StandardError.write("codexpool reload: \(error)")
            throw ExitCode(1)
        }
        let summary = JSONValue.parse(body)?["summary"]?.stringValue ?? "done"
        print("reloaded: \(summary)")
    }
}
