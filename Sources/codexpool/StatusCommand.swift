import ArgumentParser
import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import UpstreamHTTP

/// `codexpool status`: the pool of a running instance as a table (or JSON), read from its
/// `GET /ocm/v1/status?detail=true`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the credentials of a running codexpool: plan, use, resets, sessions, connector state.",
        discussion: """
        Asks the instance at --url for its operator status with a user token ($CODEXPOOL_TOKEN or \
        --token-file; none for an instance without users; --token works too but shows in `ps`). The user's pool is shown: every \
        credential behind it with both rate-limit windows, the live sessions and, for reverse \
        credentials, whether the connector is online. Exits 1 when the instance cannot be asked.
        """
    )

    @OptionGroup var instance: InstanceOptions

    @Flag(help: "Print the status as JSON (the endpoint's answer) for scripts.")
    var json = false

    @Flag(help: "Redraw every two seconds until interrupted.")
    var watch = false

    func validate() throws {
        if json, watch { throw ValidationError("--json and --watch do not go together.") }
    }

    func run() async throws {
        let fetcher = StatusFetcher(instance: try instance.client(command: "status"))
        defer { fetcher.shutdown() }
        repeat {
            let answer: StatusFetcher.Answer
            do {
                answer = try await fetcher.fetch()
            } catch {
                StandardError.write("codexpool status: \(error)")
                throw ExitCode(1)
            }
            if json {
                print(answer.json, terminator: answer.json.hasSuffix("\n") ? "" : "\n")
            } else {
                if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                print(StatusTable.render(answer.status, title: "codexpool at \(instance.url)", now: Date()), terminator: "")
            }
            if watch { try await Task.sleep(for: .seconds(2)) }
        } while watch
    }
}

/// Reads an instance's operator status over HTTP(S).
final class StatusFetcher: Sendable {
    struct Answer {
        var status: OperatorStatus
        var json: String
    }

    private let instance: InstanceClient

    init(instance: InstanceClient) {
        self.instance = instance
    }

    convenience init(url: EndpointURL, token: String?, tls: OpenSSLContext?) {
        self.init(instance: InstanceClient(url: url, token: token, tls: tls))
    }

    func fetch() async throws -> Answer {
        let body = try await instance.call(.GET, "/ocm/v1/status?detail=true")
        do {
            return Answer(status: try JSONDecoder().decode(OperatorStatus.self, from: Data(body)), json: String(decoding: body, as: UTF8.self))
        } catch {
            throw InstanceClient.Failure(description: "\(instance.url) did not answer with a codexpool operator status: \(error)")
        }
    }

    func shutdown() {
        instance.shutdown()
    }
}
