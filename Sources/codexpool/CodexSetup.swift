import Configuration
import Foundation
import PoolCore

/// The Codex CLI configuration that points a CLI at a codexpool (codex-wire-2026.md §6):
/// `config.toml`, and in ChatGPT mode the `auth.json` sign-in that goes with it. Pure text; the
/// command writes it.
struct CodexSetup {
    enum Mode {
        /// Codex signed in "with ChatGPT" to codexpool: 0.154+ reads the pool's limits from
        /// `wham/usage` and shows them in `/status` and the status line.
        case chatGPT(signInToken: String, accountID: String)
        /// A custom provider with a bearer token: any version, scripts; 0.147 shows the pool's
        /// limits from the turns' events, 0.154+ shows none.
        case bearer(userToken: String?)
    }

    /// The first line of every file this writes, so a later run knows it may replace them.
    static let marker = "# Written by `codexpool codex-config`"
    static let providerName = "codexpool"
    /// What the status line shows; without `[tui] status_line` Codex shows no limits there.
    static let statusLine = ["model-with-reasoning", "five-hour-limit", "weekly-limit", "context-remaining"]
    /// Codex reads an access token with no refresh token as unusable; this one is never valid
    /// anywhere (the access token's far `exp` keeps Codex from ever using it).
    static let placeholderRefreshToken = "codexpool-sign-in-needs-no-refresh"

    var server: EndpointURL
    var mode: Mode

    /// `https://host:port[/prefix]` without a trailing slash.
    var root: String { server.description }

    func configTOML() -> String {
        var lines = [
            Self.marker + " for \(root). Run it again to update; edit freely otherwise.",
            "model_provider = \(quoted(Self.providerName))",
        ]
        switch mode {
        case .chatGPT:
            lines += [
                "chatgpt_base_url = \(quoted(root + "/backend-api/"))",
                "cli_auth_credentials_store = \"file\"",
                "",
                "[model_providers.\(Self.providerName)]",
                "name = \(quoted(Self.providerName))",
                "base_url = \(quoted(root + "/backend-api/codex"))",
                "wire_api = \"responses\"",
                "requires_openai_auth = true",
                "supports_websockets = true",
                "",
                "[tui]",
                "status_line = [\(Self.statusLine.map(quoted).joined(separator: ", "))]",
            ]
        case .bearer(let token):
            lines += [
                "",
                "[model_providers.\(Self.providerName)]",
                "name = \(quoted(Self.providerName))",
                "base_url = \(quoted(root + "/v1"))",
                "wire_api = \"responses\"",
            ]
            if let token { lines.append("experimental_bearer_token = \(quoted(token))") }
            lines.append("supports_websockets = true")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The ChatGPT-mode `auth.json` (codex-login.md §4); nil in bearer mode.
    func authJSON(now: Date) -> Data? {
        guard case .chatGPT(let token, let accountID) = mode else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let document: JSONValue = .object([
            "auth_mode": .string("chatgpt"),
            "OPENAI_API_KEY": .null,
            "tokens": .object([
                "id_token": .string(token), "access_token": .string(token),
                "refresh_token": .string(Self.placeholderRefreshToken), "account_id": .string(accountID),
            ]),
            "last_refresh": .string(formatter.string(from: now)),
        ])
        return Data(document.serialized + [UInt8(ascii: "\n")])
    }

    /// A TOML basic string.
    private func quoted(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: escaped += String(format: "\\u%04X", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "\"\(escaped)\""
    }
}
