/// Where history lives: the request log, the usage ledger, metric history and admin state, in
/// one SQLite file (DESIGN.md "State, history and the admin surface").
public struct StorageConfiguration: Hashable, Sendable {
    public var enabled: Bool
    /// The SQLite file; its folder is created 0700, the file 0600.
    public var path: String
    public var retention: Retention

    /// How long each kind of history is kept, in seconds.
    public struct Retention: Hashable, Sendable {
        /// Request rows (and the usage they carry).
        public var requests: Double
        /// Metric samples every 5 s.
        public var detail: Double
        /// Metric samples every minute.
        public var summary: Double

        public init(requests: Double = 90 * 86_400, detail: Double = 86_400, summary: Double = 30 * 86_400) {
            self.requests = requests
            self.detail = detail
            self.summary = summary
        }

        public static let keys = ["requests", "detail", "summary"]
    }

    public init(enabled: Bool, path: String, retention: Retention = Retention()) {
        self.enabled = enabled
        self.path = path
        self.retention = retention
    }

    /// No history (what tests and programmatic set-ups get unless they ask).
    public static let disabled = StorageConfiguration(enabled: false, path: "")

    public static let keys = ["enabled", "path", "retention"]
}
