import Foundation
package import NIOCore

/// The permessage-deflate extension (RFC 7692) as one side of a WebSocket uses it: what was
/// agreed, and the compressor and decompressor for one connection.
package final class PerMessageDeflate {
    /// What the handshake agreed, seen from this side.
    package struct Agreement: Hashable, Sendable {
        /// Window bits of the compressor on this side.
        package var ownWindowBits = 15
        /// This side must start every message with a fresh compressor.
        package var ownNoContextTakeover = false

        package init(ownWindowBits: Int = 15, ownNoContextTakeover: Bool = false) {
            self.ownWindowBits = ownWindowBits
            self.ownNoContextTakeover = ownNoContextTakeover
        }
    }

    /// What this gateway offers upstream (the same as the Codex CLI offers).
    package static let clientOffer = "permessage-deflate; client_max_window_bits"

    private let agreement: Agreement
    // Made at the first message each way: a compressor holds about 256 KiB of zlib state, which
    // thousands of idle sessions should not pay for.
    private lazy var deflater = ZlibDeflater(windowBits: agreement.ownWindowBits, resetsPerMessage: agreement.ownNoContextTakeover,
                                             level: Self.compressionLevel)
    private lazy var inflater = ZlibInflater(format: .raw)
    /// zlib's compression level for what this side sends: the fastest. A relay compresses every
    /// event of every turn it passes on; on the proxy benchmark's Codex turn level 1 took 0.57 of
    /// the default level's time for 9 % more bytes (nginx's gzip defaults to 1 too).
    static let compressionLevel: Int32 = 1

    /// Messages shorter than this are sent uncompressed, which RFC 7692 lets a sender choose per
    /// message (the first frame's RSV1 bit tells the peer). Most of a Codex turn's events are
    /// output deltas of two or three hundred bytes: compressing each cost a relay several times
    /// the rest of its work on it, to save a hundred-odd bytes. The large ones — the completed
    /// response, whole output items, encrypted reasoning — are compressed as before.
    /// The same threshold as the `ws` library's for Node.js.
    package static let minimumCompressedSize = 1024

    /// Whether this side compresses `message` (text or binary) before sending it.
    package func compresses(_ message: ByteBuffer) -> Bool {
        message.readableBytes >= Self.minimumCompressedSize
    }

    package init(_ agreement: Agreement) {
        self.agreement = agreement
    }

    package func compress(_ message: ByteBuffer) -> ByteBuffer {
        deflater.compressMessage(message)
    }

    /// The message decompressed; refused once it grows past `limit` bytes.
    package func decompress(_ message: ByteBuffer, limit: Int = .max) throws(ZlibInflater.Failure) -> ByteBuffer {
        var output = ByteBuffer()
        let inflater = self.inflater
        let ended = try message.withUnsafeReadableBytes { bytes in
            Result { () throws(ZlibInflater.Failure) in try inflater.inflate(bytes, into: &output, limit: limit) }
        }.get()
        // The sender removed the end of each message's sync flush (RFC 7692 §7.2.2), unless it
        // ended the stream instead.
        guard !ended else { return output }
        _ = try Self.syncFlushTail.withUnsafeBytes { bytes in
            Result { () throws(ZlibInflater.Failure) in try inflater.inflate(bytes, into: &output, limit: limit) }
        }.get()
        return output
    }

    private static let syncFlushTail: [UInt8] = [0x00, 0x00, 0xff, 0xff]

    // MARK: Negotiation

    /// As the server: the first acceptable permessage-deflate offer in a client's
    /// `Sec-WebSocket-Extensions`, answered with the response value and our side's settings.
    package static func accept(offers header: String?) -> (response: String, agreement: Agreement)? {
        guard let header else { return nil }
        for offer in header.split(separator: ",") {
            let parameters = parse(offer)
            guard parameters.first?.name == "permessage-deflate" else { continue }
            var agreement = Agreement()
            var response = ["permessage-deflate"]
            var acceptable = true
            for (name, value) in parameters.dropFirst() {
                switch name {
                case "server_no_context_takeover":
                    agreement.ownNoContextTakeover = true
                    response.append("server_no_context_takeover")
                case "client_no_context_takeover", "client_max_window_bits":
                    // About the client's compressor; our inflater copes with any window.
                    break
                case "server_max_window_bits":
                    guard let bits = value.flatMap({ Int($0) }), (9...15).contains(bits) else { acceptable = false; break }
                    agreement.ownWindowBits = bits
                    response.append("server_max_window_bits=\(bits)")
                default:
                    acceptable = false
                }
            }
            if acceptable { return (response.joined(separator: "; "), agreement) }
        }
        return nil
    }

    /// As the client: what upstream's 101 agreed to, or nil when it declined (or answered with
    /// something we did not offer, which is then ignored rather than guessed at).
    package static func accepted(response header: String?) -> Agreement? {
        guard let header else { return nil }
        let parameters = parse(Substring(header))
        guard parameters.first?.name == "permessage-deflate" else { return nil }
        var agreement = Agreement()
        for (name, value) in parameters.dropFirst() {
            switch name {
            case "client_no_context_takeover": agreement.ownNoContextTakeover = true
            case "client_max_window_bits":
                guard let bits = value.flatMap({ Int($0) }), (9...15).contains(bits) else { return nil }
                agreement.ownWindowBits = bits
            case "server_no_context_takeover", "server_max_window_bits": break
            default: return nil
            }
        }
        return agreement
    }

    private static func parse(_ offer: Substring) -> [(name: String, value: String?)] {
        offer.split(separator: ";").map { part in
            let pieces = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let value = pieces.count > 1 ? pieces[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : nil
            return (pieces[0].lowercased(), value)
        }
    }
}
