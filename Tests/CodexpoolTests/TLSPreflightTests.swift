import Foundation
import OpenSSLTLS
import TestSupport
import Testing

/// TLS files that do not load stop everything; nothing falls back to a weaker setting.
@Suite(.timeLimit(.minutes(1))) struct TLSPreflightTests {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func connectorConfig(ca: String) throws -> String {
        try write("connector.yaml", """
            listen: 127.0.0.1:0
            credentials:
              - tag: vps
                type: external
                url: https://127.0.0.1:9
                token: t
                reverse: true
                tls:
                  ca: \(ca)
            users:
              - name: vps
                token: t
                credential: vps
            """)
    }

    @Test func aBrokenCAFileFailsCheckConfigAndStopsServe() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try connectorConfig(ca: try write("ca.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"))
        let check = try await ChildProcess.runCodexpool(["check-config", config])
        #expect(check.status == 2)
        #expect(check.stderr.contains("credential vps: tls:"), "\(check.stderr)")
        #expect(check.stderr.contains("ca.pem"))

        let serve = try await ChildProcess.runCodexpool(["serve", "--config", config])
        #expect(serve.status == 1)
        #expect(serve.stderr.contains("cannot start: credential vps: tls:"), "\(serve.stderr)")
        #expect(!serve.stderr.contains("listening on"))

        let missing = try await ChildProcess.runCodexpool(["check-config", try connectorConfig(ca: folder.appendingPathComponent("absent.pem").path)])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("absent.pem"))
    }

    func inboundConfig(certificate: String, key: String) throws -> String {
        try write("inbound.yaml", "listen: 127.0.0.1:0\ntls:\n  certificate: \(certificate)\n  key: \(key)\n")
    }

    @Test func aKeyThatDoesNotMatchItsCertificateIsAnError() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try SelfSignedCertificate.generate(commonName: "a", alternativeNames: ["DNS:localhost"])
        let second = try SelfSignedCertificate.generate(commonName: "b", alternativeNames: ["DNS:localhost"])
        let config = try inboundConfig(certificate: try write("cert.pem", first.certificatePEM), key: try write("key.pem", second.privateKeyPEM))
        let check = try await ChildProcess.runCodexpool(["check-config", config])
        #expect(check.status == 2)
        #expect(check.stderr.contains("does not belong to the certificate"), "\(check.stderr)")
    }

    @Test func aCertificateExpiringWithinTwoWeeksIsAWarning() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let soon = try SelfSignedCertificate.generate(commonName: "soon", alternativeNames: ["DNS:localhost"], days: 5)
        let config = try inboundConfig(certificate: try write("cert.pem", soon.certificatePEM), key: try write("key.pem", soon.privateKeyPEM))
        let check = try await ChildProcess.runCodexpool(["check-config", config])
        #expect(check.status == 0)
        #expect(check.stderr.contains("warning: tls.certificate"), "\(check.stderr)")
        #expect(check.stderr.contains("in 4 day(s)") || check.stderr.contains("in 5 day(s)"))

        let fine = try SelfSignedCertificate.generate(commonName: "fine", alternativeNames: ["DNS:localhost"], days: 90)
        let later = try inboundConfig(certificate: try write("cert90.pem", fine.certificatePEM), key: try write("key90.pem", fine.privateKeyPEM))
        let quiet = try await ChildProcess.runCodexpool(["check-config", later])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty)
    }
}
