import Foundation
import TestSupport
import Testing

/// The hashicorp/yamux peer (Tests/YamuxTests/GoPeer), built once per test run.
enum GoYamuxPeer {
    static let binary = GoProgram.build(
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GoPeer/yamuxpeer.go"), named: "yamuxpeer")

    static func executable() throws -> URL {
        try binary.get()
    }
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
