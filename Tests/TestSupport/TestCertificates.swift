import Foundation

/// Certificates made with the `openssl` command once per test run: a trusted CA with a server
/// certificate for localhost/127.0.0.1, an untrusted CA with one, an expired one, and one for
/// another name.
public struct TestCertificates: Sendable {
    public let directory: String

    public var caFile: String { "\(directory)/ca.pem" }
    public var serverCertificate: String { "\(directory)/server.pem" }
    public var serverKey: String { "\(directory)/server.key" }
    public var untrustedCertificate: String { "\(directory)/untrusted.pem" }
    public var untrustedKey: String { "\(directory)/untrusted.key" }
    public var expiredCertificate: String { "\(directory)/expired.pem" }
    public var expiredKey: String { "\(directory)/expired.key" }
    public var otherNameCertificate: String { "\(directory)/other.pem" }
    public var otherNameKey: String { "\(directory)/other.key" }

    public static let shared: TestCertificates = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-tls-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = #"""
            set -e
            ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            ca_ext="-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
            openssl req -x509 $ec -keyout ca.key -out ca.pem -days 30 -subj "/CN=codexpool test CA" $ca_ext
            openssl req -x509 $ec -keyout other-ca.key -out other-ca.pem -days 30 -subj "/CN=untrusted CA" $ca_ext
            printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > localhost.ext
            printf "subjectAltName=DNS:other.example\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > other.ext
            sign() { # name, issuer, extfile
                openssl req $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
                openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 30 -extfile "$3"
            }
            sign server ca localhost.ext
            sign untrusted other-ca localhost.ext
            sign other ca other.ext
            mkdir -p db && touch db/index.txt && echo 1000 > db/serial
            printf '[ca]\ndefault_ca=t\n[t]\ndatabase=db/index.txt\nserial=db/serial\nnew_certs_dir=db\ncertificate=ca.pem\nprivate_key=ca.key\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n' > ca.cnf
            openssl req $ec -keyout expired.key -out expired.csr -subj "/CN=localhost" -addext subjectAltName=DNS:localhost,IP:127.0.0.1
            openssl ca -batch -config ca.cnf -in expired.csr -out expired.pem -startdate 20200101000000Z -enddate 20200201000000Z -notext
            """#
        let result = ShellCommand.run(script, in: directory)
        precondition(result.status == 0, "generating test certificates with openssl failed: \(result.output)")
        return TestCertificates(directory: directory)
    }()

    /// `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
    public func pin(of certificate: String) -> [UInt8] {
        let result = ShellCommand.run(
            "openssl x509 -in '\(certificate)' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            in: directory)
        return Array(Data(base64Encoded: result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? Data())
    }
}

public enum ShellCommand {
    public static func run(_ script: String, in directory: String) -> (status: Int32, output: String) {
        let process = SpawnedProcess()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let pipe = Pipe()
        process.standardOutput = .pipe(pipe)
        process.standardError = .pipe(pipe)
        do {
            try process.run()
        } catch {
            return (-1, "\(error)")
        }
        let output = PipeIO.toEnd(pipe.fileHandleForReading)
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
