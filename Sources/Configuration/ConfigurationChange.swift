/// What a reload changes: the difference between the configuration in force and a new one, by
/// tag and user name (never by secret), plus the keys that only a restart can change.
public struct ConfigurationChange: Sendable {
    public var credentialsAdded: [String] = []
    public var credentialsRemoved: [String] = []
    public var credentialsChanged: [String] = []
    public var usersAdded: [String] = []
    public var usersRemoved: [String] = []
    public var usersChanged: [String] = []
    /// Old and new address, when the listener moves.
    public var listenMoved: (from: ListenAddress, to: ListenAddress)? {
        old.listen == new.listen ? nil : (old.listen, new.listen)
    }
    /// Keys whose new value waits for a restart; the running value stays in force.
    public var needsRestart: [String] = []
    /// What will run: the new configuration, with the running value of each key in `needsRestart`.
    public private(set) var effective: CodexpoolConfiguration
    private let old: CodexpoolConfiguration
    private let new: CodexpoolConfiguration

    public init(from old: CodexpoolConfiguration, to new: CodexpoolConfiguration) {
        self.old = old
        self.new = new
        effective = new
        (credentialsAdded, credentialsRemoved, credentialsChanged) = Self.compare(old.credentials, new.credentials, key: \.tag)
        (usersAdded, usersRemoved, usersChanged) = Self.compare(old.users, new.users, key: \.name)
        // Read once at start: the upstream client and token refresher, the listener's caps,
        // the history store and the log handler.
        if old.upstream != new.upstream { needsRestart.append("upstream"); effective.upstream = old.upstream }
        if old.limits != new.limits { needsRestart.append("limits"); effective.limits = old.limits }
        if old.storage != new.storage { needsRestart.append("storage"); effective.storage = old.storage }
        if old.logLevel != new.logLevel { needsRestart.append("log"); effective.logLevel = old.logLevel }
    }

    /// One line for the log and the reload's answer, e.g.
    /// `credentials +home −alice ~pool; users ~laptop; listen 127.0.0.1:8080 → 0.0.0.0:8443; tls re-read`.
    public var summary: String {
        var parts: [String] = []
        if let credentials = Self.describe(credentialsAdded, credentialsRemoved, credentialsChanged) { parts.append("credentials \(credentials)") }
        if let users = Self.describe(usersAdded, usersRemoved, usersChanged) { parts.append("users \(users)") }
        if let moved = listenMoved { parts.append("listen \(moved.from) → \(moved.to)") }
        switch (old.tls, new.tls) {
        case (nil, nil): break
        case (nil, .some): parts.append("tls on")
        case (.some, nil): parts.append("tls off")
        case (.some, .some): parts.append("tls re-read")
        }
        if old.upstreamHeaders != new.upstreamHeaders { parts.append("headers changed") }
        if old.metrics != new.metrics { parts.append("metrics changed") }
        if !needsRestart.isEmpty { parts.append("needs a restart (running value kept): \(needsRestart.joined(separator: ", "))") }
        return parts.isEmpty ? "no changes" : parts.joined(separator: "; ")
    }

    private static func compare<Item: Equatable>(_ old: [Item], _ new: [Item], key: (Item) -> String) -> ([String], [String], [String]) {
        let before = Dictionary(old.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        let after = Set(new.map(key))
        let added = new.map(key).filter { before[$0] == nil }
        let removed = old.map(key).filter { !after.contains($0) }
        let changed = new.filter { item in before[key(item)].map { $0 != item } ?? false }.map(key)
        return (added, removed, changed)
    }

    private static func describe(_ added: [String], _ removed: [String], _ changed: [String]) -> String? {
        let words = added.map { "+\($0)" } + removed.map { "−\($0)" } + changed.map { "~\($0)" }
        return words.isEmpty ? nil : words.joined(separator: " ")
    }
}
