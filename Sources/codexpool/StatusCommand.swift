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

    @Option(help: ArgumentHelp("The instance's base URL.", valueName: "url"))
    var url = "http://127.0.0.1:8080"

    @OptionGroup var credentials: UserTokenOptions

    @Flag(help: "Print the status as JSON (the endpoint's answer) for scripts.")
    var json = false

    @Flag(help: "Redraw every two seconds until interrupted.")
    var watch = false

    @Option(help: ArgumentHelp("Trust this PEM CA file for an https:// URL instead of the system store.", valueName: "file"))
    var ca: String?

    @Flag(help: "Do not verify the server's certificate (https:// only).")
    var insecure = false

    func validate() throws {
        guard EndpointURL(parsing: url) != nil else { throw ValidationError("--url must be an http:// or https:// URL, got \"\(url)\".") }
        if json, watch { throw ValidationError("--json and --watch do not go together.") }
    }

    func run() async throws {
        let endpoint = EndpointURL(parsing: url)!
        let tls: OpenSSLContext
        do {
            tls = try OpenSSLContext.client(TLSClientConfiguration(caFilePath: ca, insecureSkipVerification: insecure))
        } catch {
            StandardError.write("codexpool status: cannot set up TLS: \(error)")
            throw ExitCode(1)
        }
        let presented: String?
        do {
            presented = try credentials.resolve(command: "status")
        } catch {
            StandardError.write("codexpool status: \(error)")
            throw ExitCode(2)
        }
        let fetcher = StatusFetcher(url: endpoint, token: presented, tls: tls)
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
                print(StatusTable.render(answer.status, title: "codexpool at \(url)", now: Date()), terminator: "")
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

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let url: EndpointURL
    private let token: String?
    private let target: UpstreamTarget
    private let client = UpstreamClient(timeouts: UpstreamClient.Timeouts(connect: .seconds(5), read: .seconds(10)))

    init(url: EndpointURL, token: String?, tls: OpenSSLContext?) {
        self.url = url
        self.token = token
        target = UpstreamTarget(host: url.host, port: url.port, tls: url.usesTLS ? tls : nil, hostHeader: url.hostHeader)
    }

    func fetch() async throws -> Answer {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        let path = (url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path) + "/ocm/v1/status?detail=true"
        let response: UpstreamClient.CollectedResponse
        do {
            response = try await client.collect(target, method: .GET, path: path, headers: headers, on: MultiThreadedEventLoopGroup.singleton.next()).get()
        } catch {
            throw Failure(description: "cannot reach \(url): \(error)")
        }
        let body = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 else {
            let message = (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
                .flatMap { $0["error"] as? [String: Any] }?["message"] as? String ?? body.prefix(200).description
            let hint = response.status == 401 ? " (pass a user token in $CODEXPOOL_TOKEN or with --token-file)" : ""
            throw Failure(description: "\(url) answered \(response.status): \(message)\(hint)")
        }
        do {
            return Answer(status: try JSONDecoder().decode(OperatorStatus.self, from: Data(response.body)), json: body)
        } catch {
            throw Failure(description: "\(url) did not answer with a codexpool operator status: \(error)")
        }
    }

    func shutdown() {
        client.shutdown()
    }
}
