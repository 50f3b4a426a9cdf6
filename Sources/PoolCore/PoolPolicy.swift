public import Foundation

/// The pool's policy numbers, in one place: how often, how long, how many.
public enum PoolPolicy {
    /// A request or WebSocket upgrade stops failing over after this many tries (429 failover,
    /// 401 refresh and token failures all count).
    public static let maximumAttempts = 8
    /// How often a credential's usage is polled when nothing else updates it.
    public static let usagePollInterval: TimeInterval = 3600
    /// After failed polls the next waits 1, 2, 4, 5, 5 … minutes.
    public static let pollFailureBackoffBase: TimeInterval = 60
    public static let pollFailureBackoffCap: TimeInterval = 300
    /// After a usage-API 429 without a Retry-After.
    public static let usageAPIRetryDefault: TimeInterval = 60
    /// A peer instance that answered 400 is left alone this long (unless fresh data arrives).
    public static let upstreamRejectionPause: TimeInterval = 3600
    /// An access token is refreshed, and no longer handed out from a cache, this long before it
    /// expires: one margin for the auth file and the gateway's grant cache.
    public static let tokenRefreshMargin: TimeInterval = 60
    /// A cached access grant is re-checked against its file at least this often, so a file the
    /// official CLI rewrote is picked up.
    public static let grantRecheckInterval: TimeInterval = 60
    /// An unavailable local credential's file is re-read at most this often.
    public static let credentialReloadInterval: TimeInterval = 2
    /// Expired sticky sessions are dropped at most this often (on a selection).
    public static let sessionPurgeInterval: TimeInterval = 300
    /// How long a session told to reconnect mid-turn stays held on the turn's credential for that
    /// reconnect (which comes at once); the hold serves one selection.
    public static let turnHold: TimeInterval = 120
}
