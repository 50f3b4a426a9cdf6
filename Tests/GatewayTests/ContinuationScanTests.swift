import Foundation
@testable import Gateway
import PoolCore
import Testing

/// Finding continuation state in what passes through, and leaving another account's out.
@Suite(.timeLimit(.minutes(1))) struct ContinuationScanTests {
    @Test func encryptedContentIsFoundWithoutParsingAndEscapesDoNotMatter() {
        let plain = #"{"type":"response.completed","response":{"id":"resp_1","output":[{"type":"reasoning","encrypted_content":"gAAAA/x+y="},{"type":"compaction","encrypted_content" : "gAAAAcmp"}]}}"#
        let escaped = #"{"input":[{"type":"reasoning","encrypted_content":"gAAAA\/x+y="}]}"#
        let found = ContinuationScan.encryptedContentFingerprints(in: Array(plain.utf8))
        #expect(found.count == 2)
        #expect(ContinuationScan.encryptedContentFingerprints(in: Array(escaped.utf8)) == [found[0]])
        #expect(ContinuationScan.responseID(inEvent: Array(plain.utf8)) == "resp_1")
        let issued = ContinuationScan.issued(byCompletedEvent: Array(plain.utf8))
        #expect(issued.map(\.0) == [.encryptedContent, .encryptedContent, .responseID])
        #expect(ContinuationScan.encryptedContentFingerprints(in: Array(#"{"encrypted_content":null,"x":"encrypted_content"}"#.utf8)).isEmpty)
        // Underscores everywhere before it, and the member right at the end of the text.
        let crowded = #"{"a_b":"c_d","previous_response_id":"r_1","input":[{"_":"_"},{"encrypted_content":"E"}]}"#
        #expect(ContinuationScan.encryptedContentFingerprints(in: Array(crowded.utf8)) == [ContinuationBindings.fingerprint(of: Array("E".utf8))])
        #expect(ContinuationScan.encryptedContentFingerprints(in: Array(#""encrypted_content""#.utf8)).isEmpty)
    }

    @Test func turnStateComesFromTheHeaderOrTheMetadata() {
        let metadata = #"{"type":"response.metadata","headers":{"openai-model":"m","x-codex-turn-state":"S1"}}"#
        #expect(ContinuationScan.turnState(inMetadataEvent: Array(metadata.utf8)) == "S1")
        let message = #"{"type":"response.create","previous_response_id":"resp_9","client_metadata":{"x-codex-turn-state":"S2"},"input":[]}"#
        let state = RequestContinuation(body: Array(message.utf8), turnStateHeader: nil)
        #expect(state.turnState == "S2")
        #expect(state.previousResponseID == "resp_9")
        let http = RequestContinuation(body: Array(#"{"input":[]}"#.utf8), turnStateHeader: "S3")
        #expect(http.turnState == "S3" && http.previousResponseID == nil && http.encryptedFingerprints.isEmpty)
        #expect(RequestContinuation(body: Array("not json".utf8), turnStateHeader: nil).isEmpty)
    }

    @Test func anotherAccountsStateIsLeftOutAndTheRestKept() throws {
        let body = #"{"model":"m","previous_response_id":"resp_a","client_metadata":{"x-codex-turn-state":"S","turn_id":"t"},"input":[{"type":"message","role":"user","content":[]},{"type":"reasoning","id":"rs_1","encrypted_content":"AAA"},{"type":"reasoning","id":"rs_2","encrypted_content":"BBB"}]}"#
        let foreign = RequestContinuation.Foreign(turnState: true, previousResponse: true,
                                                  encryptedFingerprints: [ContinuationBindings.fingerprint(of: Array("AAA".utf8))])
        let rewritten = try #require(RequestContinuation.removing(foreign, from: Array(body.utf8)))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(rewritten)) as? [String: Any])
        #expect(object["previous_response_id"] == nil)
        #expect((object["client_metadata"] as? [String: Any])?["x-codex-turn-state"] == nil)
        #expect((object["client_metadata"] as? [String: Any])?["turn_id"] as? String == "t")
        let ids = (object["input"] as? [[String: Any]])?.map { $0["id"] as? String ?? $0["type"] as? String }
        #expect(ids == ["message", "rs_2"])
        #expect(object["model"] as? String == "m")
    }
}
