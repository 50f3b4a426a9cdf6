/// The answer to a reload request (SIGHUP, `codexpool reload`, `POST /api/v1/reload`).
public enum ReloadOutcome: Sendable, Equatable {
    /// In force; the one-line summary of what changed.
    case applied(String)
    /// Nothing changed; why (a configuration error names file, line and column).
    case refused(String)
}
