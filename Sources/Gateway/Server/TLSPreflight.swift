public import Configuration
public import Foundation
import OpenSSLTLS

/// Every TLS file and pin of a configuration, loaded the way `serve` will load them: a problem
/// stops start-up (and fails `check-config`) instead of falling back to something weaker.
public enum TLSPreflight {
    public struct Findings: Sendable {
        public var errors: [String] = []
        public var warnings: [String] = []

        public init() {}
    }

    /// A certificate that expires sooner than this is worth a warning.
    public static let expiryWarning: TimeInterval = 14 * 86_400

    public static func check(_ configuration: CodexpoolConfiguration, now: Date = Date()) -> Findings {
        var findings = Findings()
        if let tls = configuration.tls {
            do {
                let context = try OpenSSLContext.server(certificateChainFile: tls.certificatePath, privateKeyFile: tls.keyPath)
                if let expiry = context.certificateExpiry {
                    let left = expiry.timeIntervalSince(now)
                    if left <= 0 {
                        findings.errors.append("tls.certificate \(tls.certificatePath) expired on \(day(expiry))")
                    } else if left < expiryWarning {
                        findings.warnings.append("tls.certificate \(tls.certificatePath) expires on \(day(expiry)), in \(Int(left / 86_400)) day(s); renew it")
                    }
                }
            } catch {
                findings.errors.append("tls: \(error)")
            }
        }
        for case .external(let external) in configuration.credentials {
            do {
                _ = try peerContext(external.tls)
            } catch {
                findings.errors.append("credential \(external.tag): tls: \(error)")
            }
            if external.tls.insecureSkipVerification {
                findings.warnings.append("credential \(external.tag): TLS verification is off (tls.insecure: true)")
            }
        }
        return findings
    }

    /// The client context for a peer's `tls:` block; nil when the block asks for nothing special.
    static func peerContext(_ tls: PeerTLSConfiguration) throws -> OpenSSLContext? {
        guard tls.caPath != nil || !tls.pinnedPublicKeySHA256.isEmpty || tls.insecureSkipVerification else { return nil }
        return try OpenSSLContext.client(TLSClientConfiguration(
            caFilePath: tls.caPath, pinnedPublicKeySHA256: tls.pinnedPublicKeySHA256, insecureSkipVerification: tls.insecureSkipVerification))
    }

    private static func day(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}

/// Start-up stopped because part of the configuration cannot be used as written.
public struct GatewayStartupError: Error, CustomStringConvertible {
    public var description: String
}
