import ArgumentParser
import Foundation
import NIOHTTP1
import PoolCore

/// `codexpool credentials list|disable|enable`: the admin API's credential view and switches,
/// from the command line.
struct CredentialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "List the credentials of a running codexpool, or disable and enable one (admin users).",
        subcommands: [List.self, Disable.self, Enable.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every credential: plan, use, resets, pace, sessions, connector state, enabled (GET /api/v1/credentials).")

        @OptionGroup var instance: InstanceOptions

        @Flag(help: "Print the endpoint's JSON answer for scripts.")
        var json = false

        func run() async throws {
            let client = try instance.client(command: "credentials list")
            defer { client.shutdown() }
            let body: [UInt8]
            do {
                body = try await client.call(.GET, "/api/v1/credentials")
            } catch {
                StandardError.write("codexpool credentials list: \(error)")
                throw ExitCode(1)
            }
            if json {
                print(String(decoding: body, as: UTF8.self))
                return
            }
            guard let list = JSONValue.parse(body)?["data"]?.arrayValue else {
                StandardError.write("codexpool credentials list: \(client.url) did not answer with a credential list")
                throw ExitCode(1)
            }
            print(CredentialList.render(list, now: Date()), terminator: "")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a credential out of rotation: no new sessions; open ones and turns under way finish. Kept across restarts.")

        @Argument(help: ArgumentHelp("The credential's tag.", valueName: "tag"))
        var tag: String

        @OptionGroup var instance: InstanceOptions

        func run() async throws {
            try await CredentialsCommand.switchCredential(tag, enable: false, instance: instance)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a disabled credential back into rotation.")

        @Argument(help: ArgumentHelp("The credential's tag.", valueName: "tag"))
        var tag: String

        @OptionGroup var instance: InstanceOptions

        func run() async throws {
            try await CredentialsCommand.switchCredential(tag, enable: true, instance: instance)
        }
    }

    static func switchCredential(_ tag: String, enable: Bool, instance: InstanceOptions) async throws {
        let command = "credentials \(enable ? "enable" : "disable")"
        let client = try instance.client(command: command)
        defer { client.shutdown() }
        let escaped = tag.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? tag
        do {
            _ = try await client.call(.POST, "/api/v1/credentials/\(escaped)/\(enable ? "enable" : "disable")")
        } catch {
            StandardError.write("codexpool \(command): \(error)")
            throw ExitCode(1)
        }
        print("\(tag) \(enable ? "enabled" : "disabled"): \(enable ? "it takes new sessions again" : "no new sessions; open ones finish")")
    }
}

/// The credential list as a table.
enum CredentialList {
    static func render(_ credentials: [JSONValue], now: Date) -> String {
        var rows = [["CREDENTIAL", "PLAN", "5-HOUR", "WEEKLY", "RUNS OUT", "SESSIONS", "STATE"]]
        for credential in credentials {
            func window(_ name: String) -> String {
                let used = credential[name]?["used_percent"]?.numberValue.map { String(format: "%.1f %%", $0) } ?? "–"
                let reset = credential[name]?["resets_at"]?.numberValue.map { " (resets in \(DurationText.interval($0 - now.timeIntervalSince1970)))" } ?? ""
                return used + reset
            }
            let exhaustion = [credential["five_hour"]?["projected_exhaustion_at"], credential["weekly"]?["projected_exhaustion_at"]]
                .compactMap { $0?.numberValue }.min()
            var state = credential["enabled"]?.boolValue == false ? "disabled by admin"
                : (credential["usable"]?.boolValue == true ? "usable" : credential["why_not"]?.stringValue ?? "unusable")
            if let online = credential["connector"]?["online"]?.boolValue { state += online ? ", connector online" : ", connector offline" }
            rows.append([
                credential["tag"]?.stringValue ?? "?", credential["plan"]?.stringValue ?? "–", window("five_hour"), window("weekly"),
                exhaustion.map { "in \(DurationText.interval($0 - now.timeIntervalSince1970))" } ?? "not before reset",
                credential["sessions"]?.numberValue.map { String(Int($0)) } ?? "0", state,
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, text in index == row.count - 1 ? text : text.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
