import Foundation
import PoolCore

/// Finds continuation state in the bytes that pass through: what upstream issues (to remember
/// which account made it) and what a client sends back (to send it to that account only).
enum ContinuationScan {
    static let turnStateHeader = turnStateHeaderName.description
    static let turnStateHeaderName: StaticString = "x-codex-turn-state"
    private static let encryptedKey = Array("\"encrypted_content\"".utf8)
    private static let responseKey = Array("response".utf8)
    private static let idKey = Array("id".utf8)
    private static let headersKey = Array("headers".utf8)
    private static let turnStateKey = Array(turnStateHeader.utf8)

    /// The fingerprints of every `encrypted_content` string in a JSON text (reasoning and
    /// compaction items), found by a byte search so large answers are not parsed. Backslashes
    /// are dropped before fingerprinting: the values are base64, and an encoder may write `/`
    /// as `\/`.
    static func encryptedContentFingerprints(in bytes: some Collection<UInt8>) -> [String] {
        bytes.withContiguousBytes { buffer -> [String] in
            guard buffer.count > encryptedKey.count else { return [] }
            var found: [String] = []
            var index = 0
            while let match = firstIndex(of: encryptedKey, in: buffer, from: index) {
                index = match + encryptedKey.count
                while index < buffer.count, buffer[index] == UInt8(ascii: " ") || buffer[index] == UInt8(ascii: ":") { index += 1 }
                guard index < buffer.count, buffer[index] == UInt8(ascii: "\"") else { continue }
                var end = index + 1
                var value: [UInt8] = []
                while end < buffer.count, buffer[end] != UInt8(ascii: "\"") {
                    if buffer[end] == UInt8(ascii: "\\") {
                        end += 1  // the escaped byte is kept, the backslash dropped
                        guard end < buffer.count else { break }
                    }
                    value.append(buffer[end])
                    end += 1
                }
                index = end + 1
                if !value.isEmpty { found.append(ContinuationBindings.fingerprint(of: value)) }
            }
            return found
        }
    }

    /// `response.id` of a `response.completed` (or `response.created`) event.
    static func responseID(inEvent bytes: some Collection<UInt8>) -> String? {
        bytes.withContiguousBytes { buffer in
            var scanner = JSONFieldScanner(bytes: buffer)
            guard scanner.seek(toMember: responseKey), scanner.seek(toMember: idKey) else { return nil }
            return scanner.string()
        }
    }

    /// `headers["x-codex-turn-state"]` of a `response.metadata` event.
    static func turnState(inMetadataEvent bytes: some Collection<UInt8>) -> String? {
        bytes.withContiguousBytes { buffer in
            var scanner = JSONFieldScanner(bytes: buffer)
            guard scanner.seek(toMember: headersKey), scanner.seek(toMember: turnStateKey) else { return nil }
            return scanner.string()
        }
    }

    /// What upstream issued with one finished answer: its response id and encrypted items.
    static func issued(byCompletedEvent bytes: some Collection<UInt8>) -> [(ContinuationBindings.Kind, String)] {
        var values: [(ContinuationBindings.Kind, String)] = encryptedContentFingerprints(in: bytes).map { (.encryptedContent, $0) }
        if let id = responseID(inEvent: bytes) { values.append((.responseID, id)) }
        return values
    }

    /// `memchr` for the needle's `_` (rare in JSON next to `"`, which is everywhere), then a
    /// compare around it (glibc's `memmem` is not visible from Swift).
    private static func firstIndex(of needle: [UInt8], in haystack: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = haystack.baseAddress, let anchor = needle.firstIndex(of: UInt8(ascii: "_")) else { return nil }
        var index = start + anchor
        while index - anchor + needle.count <= haystack.count {
            guard let hit = memchr(base + index, Int32(needle[anchor]), haystack.count - needle.count + anchor + 1 - index) else { return nil }
            let position = base.distance(to: UnsafeRawPointer(hit)) - anchor
            if memcmp(base + position, needle, needle.count) == 0 { return position }
            index = position + anchor + 1
        }
        return nil
    }
}
