import ArgumentParser
import Configuration
import Foundation
import Gateway
import NIOHTTP1
import NIOPosix
import OpenSSLTLS
import PoolCore
import Storage
import UpstreamHTTP

/// `codexpool codex-config`: points a Codex CLI at a running codexpool by writing its
/// `config.toml` and, in ChatGPT mode, an `auth.json` sign-in (codex-wire-2026.md §6).
struct CodexConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codex-config",
        abstract: "Point a Codex CLI at a codexpool: write its config.toml and sign-in.",
        discussion: """
        Asks the instance at --url who the user token ($CODEXPOOL_TOKEN or --token-file) belongs \
        to, then writes $CODEX_HOME/config.toml (default ~/.codex) and, by default, a ChatGPT-mode \
        auth.json (mode 0600): Codex 0.154 and later then show the pool's 5-hour and weekly use \
        in /status and the status line. The sign-in is a token signed with the user token, valid \
        for ten years, so Codex never tries to refresh it; changing the user token revokes it. \
        This mode needs an https:// URL. --bearer writes the bearer-token provider instead \
        (Codex 0.147, scripts, http:// URLs). Files not written by this command are only \
        replaced with --force, which keeps a copy next to them. With --ca, the CA is copied into \
        the Codex home and the CODEX_CA_CERTIFICATE line Codex needs is printed.
        """
    )

    @Option(help: ArgumentHelp("The instance's base URL, e.g. https://vps.example:8443.", valueName: "url"))
    var url: String

    @OptionGroup var credentials: UserTokenOptions

    @Option(help: ArgumentHelp("Trust this PEM CA file for the instance's certificate (a private or self-signed one).", valueName: "file"))
    var ca: String?

    @Option(help: ArgumentHelp("The Codex home to write into (default: $CODEX_HOME, else ~/.codex).", valueName: "directory"))
    var codexHome: String?

    @Flag(help: "Write the bearer-token provider (Codex 0.147, scripts, http:// URLs) instead of a ChatGPT-mode sign-in.")
    var bearer = false

    @Flag(help: "Replace a config.toml or auth.json this command did not write (a copy of each is kept as *.before-codexpool).")
    var force = false

    func validate() throws {
        guard let endpoint = EndpointURL(parsing: url) else { throw ValidationError("--url must be an http:// or https:// URL, got \"\(url)\".") }
        if !bearer, !endpoint.usesTLS {
            throw ValidationError("""
            Codex signs in to a ChatGPT-mode server only over https:// (it exits with "workspace backend must use an HTTPS origin"). \
            Give the instance's https:// address, or pass --bearer for the bearer-token setup.
            """)
        }
    }

    func run() async throws {
        let server = EndpointURL(parsing: url)!
        let token: String?
        do {
            token = try credentials.resolve(command: "codex-config")
        } catch {
            throw failure("\(error)", exitCode: 2)
        }
        let account: AccountCheck.Answer
        do {
            account = try await AccountCheck.ask(server, token: token, caFile: ca)
        } catch {
            throw failure("\(error)")
        }
        let home = codexHome ?? ProcessInfo.processInfo.environment["CODEX_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".codex").path
        let mode: CodexSetup.Mode = bearer ? .bearer(userToken: token)
            : .chatGPT(signInToken: ChatGPTModeToken.issue(userToken: Secret(token ?? ""), accountID: account.accountID,
                                                           planType: account.planType, now: Date()),
                       accountID: account.accountID)
        let setup = CodexSetup(server: server, mode: mode)
        let writer = CodexHomeWriter(home: home, force: force)
        let caCopy: String?
        do {
            try writer.prepare()
            caCopy = try ca.map { try writer.copyCA(from: $0) }
            try writer.write(Data(setup.configTOML().utf8), to: "config.toml", permissions: 0o600, ours: CodexHomeWriter.isOurConfig)
            if let auth = setup.authJSON(now: Date()) {
                try writer.write(auth, to: "auth.json", permissions: 0o600, ours: CodexHomeWriter.isOurSignIn)
            }
        } catch {
            throw failure("\(error)")
        }
        print("Wrote \(home)/config.toml" + (bearer ? "" : " and \(home)/auth.json") + " for \(account.accountID) at \(server).")
        for line in writer.backups { print("Kept the previous file as \(line).") }
        if let caCopy {
            print("Codex must trust the instance's certificate; start it with:")
            print("  export CODEX_CA_CERTIFICATE=\(caCopy)")
        }
        if codexHome != nil { print("Use it with: export CODEX_HOME=\(home)") }
        print(bearer ? "Codex 0.147 shows the pool's limits in /status after a turn." :
            "Codex 0.154+ shows the pool's 5-hour and weekly use in /status and the status line.")
    }

    private func failure(_ message: String, exitCode: Int32 = 1) -> ExitCode {
        StandardError.write("codexpool codex-config: \(message)")
        return ExitCode(exitCode)
    }
}
