public import Foundation

/// Go programs the interop tests run as peers, built with Debian's Go in GOPATH mode against
/// Debian's hashicorp/yamux — no module downloads.
public enum GoProgram {
    public static let installHint = "install it with: apt-get install golang-go golang-github-hashicorp-yamux-dev (scripts/test does)"

    public struct Unavailable: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Builds the single-file program `source` into a fresh folder and returns the binary.
    public static func build(_ source: URL, named name: String) -> Result<URL, Unavailable> {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/go") else {
            return .failure(Unavailable(message: "the Go toolchain is missing; \(installHint)"))
        }
        guard FileManager.default.fileExists(atPath: "/usr/share/gocode/src/github.com/hashicorp/yamux/session.go") else {
            return .failure(Unavailable(message: "hashicorp/yamux is missing; \(installHint)"))
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Go's build cache is kept with the package's build products: a fresh cache recompiles
        // the standard library (crypto/tls included), which costs a loaded CI machine seconds.
        let result = ShellCommand.run(
            "GO111MODULE=off GOPATH=\(directory)/gopath:/usr/share/gocode GOCACHE='\(packageRoot.path)/.build/go-build-cache' go build -o \(name) '\(source.path)'",
            in: directory)
        guard result.status == 0 else { return .failure(Unavailable(message: "go build failed: \(result.output)")) }
        return .success(URL(fileURLWithPath: "\(directory)/\(name)"))
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
