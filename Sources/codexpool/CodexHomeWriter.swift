import Foundation
import Gateway
import PoolCore
import Storage

/// Writes files into a Codex home (`$CODEX_HOME`): atomically, with the given mode, and never over
/// a file this program did not write unless told to — then a copy of it is kept.
final class CodexHomeWriter {
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    let home: String
    let force: Bool
    /// Copies kept of replaced files.
    private(set) var backups: [String] = []
    private let store = FileSystemCredentialStore()

    init(home: String, force: Bool) {
        self.home = home
        self.force = force
    }

    /// Creates the home (mode 0700, as Codex does) when it is missing.
    func prepare() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: home, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw Refusal(description: "\(home) is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw Refusal(description: "cannot create \(home): \(error.localizedDescription)")
        }
    }

    /// Writes `name`; an existing file for which `ours` is false is kept as `name.before-codexpool`
    /// with --force, and refused without.
    func write(_ data: Data, to name: String, permissions: UInt16, ours: (Data) -> Bool) throws {
        let path = home + "/" + name
        if let existing = FileManager.default.contents(atPath: path), !ours(existing) {
            guard force else {
                throw Refusal(description: "\(path) exists and was not written by codexpool; pass --force to replace it "
                    + "(a copy is kept as \(name).before-codexpool), or use another --codex-home")
            }
            let backup = path + ".before-codexpool"
            do {
                try store.writeAtomically(existing, to: backup, permissions: 0o600)
            } catch {
                throw Refusal(description: "cannot keep a copy of \(path): \(error)")
            }
            backups.append(backup)
        }
        do {
            try store.writeAtomically(data, to: path, permissions: permissions)
        } catch {
            throw Refusal(description: "cannot write \(path): \(error)")
        }
    }

    /// Copies the CA into the home as `codexpool-ca.pem`, so the printed path outlives the original.
    func copyCA(from source: String) throws -> String {
        guard let pem = FileManager.default.contents(atPath: source) else { throw Refusal(description: "cannot read the CA file \(source)") }
        guard String(decoding: pem, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
            throw Refusal(description: "\(source) holds no PEM certificate")
        }
        let path = home + "/codexpool-ca.pem"
        do {
            try store.writeAtomically(pem, to: path, permissions: 0o644)
        } catch {
            throw Refusal(description: "cannot write \(path): \(error)")
        }
        return path
    }

    static func isOurConfig(_ existing: Data) -> Bool {
        existing.starts(with: Data(CodexSetup.marker.utf8))
    }

    /// An auth.json whose access token codexpool issued (a sign-in from an earlier run).
    static func isOurSignIn(_ existing: Data) -> Bool {
        guard let auth = try? CodexAuthFile(data: existing), let token = auth.tokens?.accessToken else { return false }
        return CodexAuthFile.claims(ofJWT: token)?["iss"]?.stringValue == ChatGPTModeToken.issuer
    }
}
