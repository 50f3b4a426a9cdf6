/// Resolves file paths written in a configuration file.
///
/// Relative paths are taken relative to the configuration file's folder (not the working
/// directory), so a service started from anywhere finds the same files; `~/` means the home folder.
struct ConfigurationPathResolver {
    let baseDirectory: String
    let environment: [String: String]

    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return join(homeDirectory, String(path.dropFirst(2))) }
        return join(baseDirectory, path)
    }

    /// Where the official Codex CLI keeps its credentials: `$CODEX_HOME/auth.json`, else `~/.codex/auth.json`.
    var defaultCodexCredentialPath: String {
        if let codexHome = environment["CODEX_HOME"], !codexHome.isEmpty {
            return join(resolve(codexHome), "auth.json")
        }
        return join(homeDirectory, ".codex/auth.json")
    }

    /// `$XDG_STATE_HOME/codexpool/codexpool.sqlite3`, else under `~/.local/state`.
    var defaultStoragePath: String {
        let state = environment["XDG_STATE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? join(homeDirectory, ".local/state")
        return join(join(state, "codexpool"), "codexpool.sqlite3")
    }

    private var homeDirectory: String {
        if let home = environment["HOME"], !home.isEmpty { return home }
        return "/root"
    }

    private func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
