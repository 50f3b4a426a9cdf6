import Configuration
import Foundation
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PoolCore
import Synchronization
import UpstreamHTTP

/// The last access grant of a local credential and until when it may be reused without asking
/// the credential source, so a request does not pay an actor hop for a token it already has.
final class GrantCache: Sendable {
    private let entry = Mutex<(grant: AccessGrant, validUntil: Date)?>(nil)

    func grant(now: Date) -> AccessGrant? {
        entry.withLock { entry in
            guard let entry, now < entry.validUntil else { return nil }
            return entry.grant
        }
    }

    func store(_ grant: AccessGrant, auth: CodexAuthFile?, now: Date) {
        // Reuse until the token would need a refresh anyway (the same margin the file uses), and
        // re-ask regularly so a file the official CLI rewrote is picked up.
        var validUntil = now.addingTimeInterval(PoolPolicy.grantRecheckInterval)
        if let expiry = auth?.accessTokenExpiry { validUntil = min(validUntil, expiry.addingTimeInterval(-PoolPolicy.tokenRefreshMargin)) }
        if let lastRefresh = auth?.lastRefresh { validUntil = min(validUntil, lastRefresh.addingTimeInterval(CodexAuthFile.refreshAge)) }
        entry.withLock { $0 = (grant, validUntil) }
    }

    func invalidate() {
        entry.withLock { $0 = nil }
    }
}
