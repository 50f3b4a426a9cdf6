import ArgumentParser
import Configuration
import OpenSSLTLS

/// How an operator command reaches a running codexpool: its URL, the trust for its certificate,
/// and a user token.
struct InstanceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The instance's base URL.", valueName: "url"))
    var url = "http://127.0.0.1:8080"

    @OptionGroup var credentials: UserTokenOptions

    @Option(help: ArgumentHelp("Trust this PEM CA file for an https:// URL instead of the system store.", valueName: "file"))
    var ca: String?

    @Flag(help: "Do not verify the server's certificate (https:// only).")
    var insecure = false

    func validate() throws {
        guard EndpointURL(parsing: url) != nil else { throw ValidationError("--url must be an http:// or https:// URL, got \"\(url)\".") }
    }

    /// A client for the instance; errors are printed for `command` and become exit codes.
    func client(command: String) throws -> InstanceClient {
        let tls: OpenSSLContext
        do {
            tls = try OpenSSLContext.client(TLSClientConfiguration(caFilePath: ca, insecureSkipVerification: insecure))
        } catch {
            StandardError.write("codexpool \(command): cannot set up TLS: \(error)")
            throw ExitCode(1)
        }
        let token: String?
        do {
            token = try credentials.resolve(command: command)
        } catch {
            StandardError.write("codexpool \(command): \(error)")
            throw ExitCode(2)
        }
        return InstanceClient(url: EndpointURL(parsing: url)!, token: token, tls: tls)
    }
}
