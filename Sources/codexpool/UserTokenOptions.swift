import ArgumentParser
import Foundation

/// How a command that talks to a running codexpool gets the user token: --token-file, $CODEXPOOL_TOKEN,
/// or --token (which other users can read in `ps`, hence the warning).
struct UserTokenOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A user token of that instance; visible to other users in `ps` — prefer $CODEXPOOL_TOKEN or --token-file.",
                               valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("A file holding the user token (its first line).", valueName: "file"))
    var tokenFile: String?

    func validate() throws {
        if token != nil, tokenFile != nil { throw ValidationError("--token and --token-file do not go together.") }
    }

    /// The token, or nil when none was given anywhere. `command` names the warning's sender.
    func resolve(command: String) throws -> String? {
        if let tokenFile {
            let text: String
            do {
                text = try String(contentsOfFile: tokenFile, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read the token file \(tokenFile): \(error.localizedDescription)")
            }
            let line = text.split(whereSeparator: \.isNewline).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else { throw ValidationError("the token file \(tokenFile) is empty") }
            return line
        }
        if let token {
            StandardError.write("codexpool \(command): warning: --token is visible to other users in `ps`; use $CODEXPOOL_TOKEN or --token-file")
            return token
        }
        return ProcessInfo.processInfo.environment["CODEXPOOL_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
