import OpenSSLTLS
import Synchronization

/// The certificate and key new connections are served with (nil: plain HTTP). Each accepted
/// connection takes the context in force at that moment, so a reload that re-reads renewed
/// files serves them from the next connection on while open ones keep theirs.
final class InboundTLS: Sendable {
    private let current: Mutex<OpenSSLContext?>

    init(_ context: OpenSSLContext?) {
        current = Mutex(context)
    }

    var context: OpenSSLContext? { current.withLock { $0 } }

    func replace(with context: OpenSSLContext?) {
        current.withLock { $0 = context }
    }
}
