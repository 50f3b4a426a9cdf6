import Foundation
import TestSupport
import Testing

/// The hashicorp/yamux peer (Tests/YamuxTests/GoPeer), built once per test run with Debian's Go
/// in GOPATH mode — no module downloads.
enum GoYamuxPeer {
    static let installHint = "install it with: apt-get install golang-go golang-github-hashicorp-yamux-dev (scripts/test does)"

    /// The built binary, or a message saying why it could not be built.
    static let binary: Result<URL, GoPeerUnavailable> = {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GoPeer/yamuxpeer.go").path
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/go") else {
            return .failure(GoPeerUnavailable(message: "the Go toolchain is missing; \(installHint)"))
        }
        guard FileManager.default.fileExists(atPath: "/usr/share/gocode/src/github.com/hashicorp/yamux/session.go") else {
            return .failure(GoPeerUnavailable(message: "hashicorp/yamux is missing; \(installHint)"))
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-gopeer-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Go's build cache is kept with the package's build products: a fresh cache recompiles
        // the standard library (crypto/tls included), which costs a loaded CI machine seconds.
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cache = packageRoot.appendingPathComponent(".build/go-build-cache").path
        let result = ShellCommand.run(
            "GO111MODULE=off GOPATH=\(directory)/gopath:/usr/share/gocode GOCACHE='\(cache)' go build -o yamuxpeer '\(source)'",
            in: directory)
        guard result.status == 0 else { return .failure(GoPeerUnavailable(message: "go build failed: \(result.output)")) }
        return .success(URL(fileURLWithPath: "\(directory)/yamuxpeer"))
    }()

    static func executable() throws -> URL {
        try binary.get()
    }
}

struct GoPeerUnavailable: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// FNV-1a 64, the checksum the Go peer answers with.
func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
    // Over raw memory when possible: element-wise ByteBufferView access in a debug build costs
    // seconds per 10 MB, which starved the connections these tests check.
    func hash(_ sequence: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sequence {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
    return bytes.withContiguousStorageIfAvailable { hash($0) } ?? hash(bytes)
}

/// Parses `KEY=VALUE` pairs from the peer's `SUMMARY` line.
func summaryValues(_ output: String) -> [String: Int] {
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("SUMMARY") }) else { return [:] }
    var values: [String: Int] = [:]
    for pair in line.split(separator: " ").dropFirst() {
        let parts = pair.split(separator: "=")
        if parts.count == 2, let value = Int(parts[1]) { values[String(parts[0])] = value }
    }
    return values
}
