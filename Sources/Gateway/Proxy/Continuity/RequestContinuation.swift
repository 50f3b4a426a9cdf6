import Foundation
import PoolCore

/// The continuation state one client request carries (a `POST /responses` body or a WebSocket
/// `response.create`): the turn's state token, the response it continues, and the encrypted
/// reasoning and compaction items in its input.
struct RequestContinuation: Equatable {
    var turnState: String?
    var previousResponseID: String?
    var encryptedFingerprints: [String] = []

    /// From the request's summary, read already for the whole exchange (nil for a body that is
    /// not a JSON object): only the encrypted items take a pass of their own.
    /// - Parameter turnStateHeader: the HTTP request's `x-codex-turn-state`; over WebSocket the
    ///   token travels in `client_metadata`.
    init(summary: ResponsesRequestSummary?, body: some Collection<UInt8>, turnStateHeader: String?) {
        turnState = turnStateHeader.flatMap { $0.isEmpty ? nil : $0 } ?? summary?.metadataTurnState
        previousResponseID = summary?.previousResponseID
        encryptedFingerprints = ContinuationScan.encryptedContentFingerprints(in: body)
    }

    var isEmpty: Bool { turnState == nil && previousResponseID == nil && encryptedFingerprints.isEmpty }

    /// The pieces of state another account than `destination` issued, which must not go there.
    struct Foreign: Equatable {
        var turnState = false
        var previousResponse = false
        var encryptedFingerprints: Set<String> = []

        var isEmpty: Bool { !turnState && !previousResponse && encryptedFingerprints.isEmpty }
    }

    /// The body without `foreign`: the turn-state token and previous response dropped, and every
    /// input item whose encrypted content another account made left out (the model loses that
    /// reasoning; the account would refuse the request with it). nil when the body is not a
    /// JSON object (it then goes as it is: there is nothing to recognise in it).
    static func removing(_ foreign: Foreign, from body: some Collection<UInt8>) -> [UInt8]? {
        guard case .object(var object) = JSONValue.parse(body) else { return nil }
        if foreign.previousResponse { object["previous_response_id"] = nil }
        if foreign.turnState, case .object(var metadata) = object["client_metadata"] {
            metadata[ContinuationScan.turnStateHeader] = nil
            object["client_metadata"] = .object(metadata)
        }
        if !foreign.encryptedFingerprints.isEmpty, case .array(let input) = object["input"] {
            object["input"] = .array(input.filter { item in
                guard let content = item["encrypted_content"]?.stringValue else { return true }
                return !foreign.encryptedFingerprints.contains(ContinuationBindings.fingerprint(of: content.utf8.filter { $0 != UInt8(ascii: "\\") }))
            })
        }
        return JSONValue.object(object).serialized
    }
}
