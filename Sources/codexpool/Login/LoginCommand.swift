import ArgumentParser
import Configuration
import Foundation
import PoolCore
import Storage

/// `codexpool login`: signs a ChatGPT account in and writes a Codex-compatible auth.json.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Sign a ChatGPT/Codex account in and write its auth.json (0600) for a codexpool credential.",
        discussion: """
        By default the device-code flow, for a machine without a browser: open the printed address \
        on any device, enter the code, and the tokens arrive here. --paste: the browser flow for a \
        remote machine — open the printed address on your computer, sign in, and paste back the \
        address the browser ends on (http://localhost:1455/auth/callback?code=…, an error page is \
        fine). --listen: the same with a one-shot listener on 127.0.0.1:1455 for a machine with a \
        browser. --config FILE --tag TAG writes to that credential's credential_path (a running \
        instance picks the new tokens up by itself) and takes the issuer from upstream.auth_url.
        """
    )

    @Option(help: ArgumentHelp("Where to write the auth.json.", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("A configuration file whose credential to sign in (with --tag).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("The local credential of --config to sign in.", valueName: "tag"))
    var tag: String?

    @Option(help: ArgumentHelp("The OAuth issuer (default: upstream.auth_url of --config, else https://auth.openai.com).", valueName: "url"))
    var issuer: String?

    @Flag(help: "Browser flow: print the address to open, then read the address the browser ended on from standard input.")
    var paste = false

    @Flag(help: "Browser flow with a one-shot listener on 127.0.0.1 for the browser's redirect.")
    var listen = false

    @Option(help: ArgumentHelp("The listener's port for --listen (the issuer expects 1455).", valueName: "port"))
    var callbackPort = 1455

    func validate() throws {
        if paste, listen { throw ValidationError("--paste and --listen do not go together.") }
        if (config == nil) != (tag == nil) { throw ValidationError("--config and --tag go together.") }
        if output == nil, config == nil { throw ValidationError("Say where to write the auth.json: --output PATH, or --config FILE --tag TAG.") }
        if output != nil, config != nil { throw ValidationError("--output and --config do not go together.") }
        if let issuer, EndpointURL(parsing: issuer) == nil { throw ValidationError("--issuer must be an http:// or https:// URL.") }
    }

    func run() async throws {
        let (path, configuredIssuer) = try destination()
        guard let issuerURL = EndpointURL(parsing: issuer ?? configuredIssuer ?? "https://auth.openai.com") else { throw ExitCode(2) }
        let client: SignInClient
        do {
            client = try SignInClient(issuer: issuerURL)
        } catch {
            throw failure("cannot set up TLS: \(error)")
        }
        defer { client.shutdown() }
        let tokens: (idToken: String, accessToken: String, refreshToken: String)
        do {
            tokens = try await signIn(client)
        } catch {
            throw failure("\(error)")
        }
        let now = Date()
        let claims = CodexAuthFile.claims(ofJWT: tokens.idToken)?["https://api.openai.com/auth"]?.objectValue
            ?? CodexAuthFile.claims(ofJWT: tokens.accessToken)?["https://api.openai.com/auth"]?.objectValue
        let accountID = claims?["chatgpt_account_id"]?.stringValue
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var tokenFields: [String: JSONValue] = [
            "id_token": .string(tokens.idToken), "access_token": .string(tokens.accessToken), "refresh_token": .string(tokens.refreshToken),
        ]
        if let accountID { tokenFields["account_id"] = .string(accountID) }
        let document: JSONValue = .object([
            "auth_mode": .string("chatgpt"), "OPENAI_API_KEY": .null, "tokens": .object(tokenFields),
            "last_refresh": .string(formatter.string(from: now)),
        ])
        do {
            try FileSystemCredentialStore.createPrivateFolder(holding: path)
            try FileSystemCredentialStore().writeAtomically(Data(document.serialized + [UInt8(ascii: "\n")]), to: path, permissions: 0o600)
        } catch {
            throw failure("signed in, but cannot write \(path): \(error)")
        }
        let plan = claims?["chatgpt_plan_type"]?.stringValue ?? "unknown"
        StandardOutput.write("Signed in: account \(accountID ?? "unknown"), plan \(plan). Wrote \(path).\n")
    }

    /// The file to write and the configured issuer, from --output or --config/--tag.
    private func destination() throws -> (String, String?) {
        if let output { return (output, nil) }
        guard let config, let tag else { throw ExitCode(2) }
        let configuration: CodexpoolConfiguration
        do {
            configuration = try ConfigurationLoader().load(contentsOf: config)
        } catch {
            throw failure("\(error)", exitCode: 2)
        }
        guard case .local(let local) = configuration.credential(tagged: tag) else {
            throw failure("\(config) has no local credential tagged \(tag)", exitCode: 2)
        }
        return (local.credentialPath, configuration.upstream.authURL.description)
    }

    private func signIn(_ client: SignInClient) async throws -> (idToken: String, accessToken: String, refreshToken: String) {
        if !paste, !listen {
            return try await DeviceCodeSignIn(client: client) { StandardOutput.write($0 + "\n") }.run()
        }
        if paste {
            let browser = BrowserSignIn(client: client, redirectURI: "http://localhost:\(callbackPort)/auth/callback")
            StandardOutput.write("Open this address in a browser (on any computer), sign in, and choose the account:\n\n    \(browser.authorizeURL)\n\n")
            StandardOutput.write("The browser then ends on http://localhost:\(callbackPort)/auth/callback?… (an error page is fine). Paste that address here:\n")
            guard let line = readLine(strippingNewline: true) else { throw SignInClient.Failure(description: "no address was pasted") }
            return try await browser.exchange(try browser.code(fromRedirect: line))
        }
        let listener = try await CallbackListener.start(port: callbackPort)
        let browser = BrowserSignIn(client: client, redirectURI: "http://localhost:\(listener.port)/auth/callback")
        StandardOutput.write("Open this address in a browser on this machine and sign in:\n\n    \(browser.authorizeURL)\n\nWaiting for the browser…\n")
        do {
            let redirect = try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask { try await listener.redirect() }
                group.addTask {
                    try await Task.sleep(for: .seconds(300))
                    throw SignInClient.Failure(description: "the browser did not come back within 5 minutes")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            await listener.stop()
            return try await browser.exchange(try browser.code(fromRedirect: redirect))
        } catch {
            await listener.stop()
            throw error
        }
    }

    private func failure(_ message: String, exitCode: Int32 = 1) -> ExitCode {
        StandardError.write("codexpool login: \(message)")
        return ExitCode(exitCode)
    }
}
