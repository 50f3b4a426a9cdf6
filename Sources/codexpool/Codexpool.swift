import ArgumentParser
import OpenSSLTLS

/// The `codexpool` command: one executable for the balancer and the connector role.
@main
struct Codexpool: AsyncParsableCommand {
    static let versionNumber = "0.1.0"

    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "codexpool",
            abstract: "Pool several ChatGPT/Codex subscriptions behind one endpoint for the Codex CLI.",
            discussion: """
            One program, two roles, both set up in one YAML file: a balancer (usually on a VPS) that \
            picks an account for each Codex session and shows the pool's combined rate limits, and \
            a connector (usually at home) that dials out to a balancer and lends it the accounts \
            of its own machine. See README.md for a configuration reference.
            """,
            version: "codexpool \(versionNumber) (\(OpenSSLLibrary.versionText))",
            subcommands: [ServeCommand.self, CheckConfigCommand.self, StatusCommand.self, CredentialsCommand.self, ReloadCommand.self, LoginCommand.self, CodexConfigCommand.self, DemoCommand.self],
            defaultSubcommand: nil
        )
    }
}
