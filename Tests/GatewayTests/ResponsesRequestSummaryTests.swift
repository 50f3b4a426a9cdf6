import Configuration
@testable import Gateway
import NIOHTTP1
import PoolCore
import Testing
import UpstreamHTTP

@Suite(.timeLimit(.minutes(1))) struct ResponsesRequestSummaryTests {
    func summary(_ text: String) -> ResponsesRequestSummary? {
        ResponsesRequestSummary(json: Array(text.utf8))
    }

    @Test func readsTheTopLevelFieldsAroundTheConversation() throws {
        let history = (0..<200).map { #"{"type":"message","role":"user","content":[{"type":"input_text","text":"turn \#($0) with \"quotes\", {braces} and [brackets]"}]}"# }
        let found = summary(#"{"type":"response.create","input":[\#(history.joined(separator: ","))],"model":"gpt-5.5","generate":false,"#
            + #""reasoning":{"summary":"auto","effort":"high"},"reasoning_effort":"low","service_tier":"priority","store":false}"#)
        #expect(found?.type == "response.create")
        #expect(found?.model == "gpt-5.5")
        #expect(found?.generate == false)
        #expect(found?.reasoningEffort == "high", "reasoning.effort wins over reasoning_effort")
        #expect(found?.serviceTier == "priority")
        let user = try UserAuthenticator(users: [UserConfiguration(name: "ops", token: Secret("ops-token"), credential: "pool")], defaultProvider: "pool")
            .authenticate(HTTPHeaders([("authorization", "Bearer ops-token")])).get()
        let line = GatewayRuntime.assignmentLine(tag: "alpha", sessionID: "s1", user: user, request: found)
        #expect(line == "assigned credential alpha for session s1 by user ops, model=gpt-5.5, think=high, fast")
    }

    @Test func absentOrOddlyTypedFieldsAreNil() {
        let found = summary(#"{"type":"response.create","model":null,"generate":"no","reasoning":null,"reasoning_effort":"low","n":[1,2]}"#)
        #expect(found?.model == nil)
        #expect(found?.generate == nil)
        #expect(found?.reasoningEffort == "low")
        #expect(summary(#"{"model":"gpt-\u0035"}"#)?.model == "gpt-5")
        #expect(summary("{}") == ResponsesRequestSummary())
        #expect(summary(#"{"reasoning_effort":"low","reasoning":{"effort":"high"}}"#)?.reasoningEffort == "high")
    }

    /// The continuation state is read in the same pass (the dispatch and the WebSocket relay
    /// take it from here): the first of a repeated member counts, and `client_metadata` of
    /// another kind than an object is no state.
    @Test func readsTheContinuationStateInTheSamePass() {
        let found = summary(#"{"input":[{"type":"message","content":"{\"previous_response_id\":\"no\"}"}],"previous_response_id":"resp_1","#
            + #""client_metadata":{"other":{"x-codex-turn-state":"no"},"x-codex-turn-state":"ts-1"},"previous_response_id":"resp_2"}"#)
        #expect(found?.previousResponseID == "resp_1")
        #expect(found?.metadataTurnState == "ts-1")
        #expect(summary(#"{"client_metadata":null,"model":"m"}"#)?.metadataTurnState == nil)
        #expect(summary(#"{"client_metadata":null,"model":"m"}"#)?.model == "m")
        #expect(summary(#"{"client_metadata":{"x-codex-turn-state":7}}"#)?.metadataTurnState == nil)
        #expect(summary(#"{"previous_response_id":null}"#)?.previousResponseID == nil)
        // The continuation of a request: the header wins over the metadata, which serves over WebSocket.
        let body = Array(#"{"previous_response_id":"resp_1","client_metadata":{"x-codex-turn-state":"ts-1"}}"#.utf8)
        #expect(RequestContinuation(body: body, turnStateHeader: "ts-header").turnState == "ts-header")
        #expect(RequestContinuation(body: body, turnStateHeader: nil).turnState == "ts-1")
        #expect(RequestContinuation(body: body, turnStateHeader: "").previousResponseID == "resp_1")
        #expect(RequestContinuation(body: Array("[1]".utf8), turnStateHeader: nil).isEmpty)
    }

    /// Names are compared where they lie; one written with escapes is compared decoded.
    @Test func memberNamesWithEscapesAreReadDecoded() {
        #expect(summary(#"{"mo\u0064el":"gpt-5.5","\u0074ype":"response.create"}"#) == {
            var expected = ResponsesRequestSummary()
            expected.model = "gpt-5.5"
            expected.type = "response.create"
            return expected
        }())
        // A name that only looks like "model" once its escape is ignored is another name.
        #expect(summary(#"{"mod\"el":"gpt-5.5","modelx":"a","mode":"b"}"#)?.model == nil)
    }

    @Test func malformedOrNonObjectMessagesAreRefused() {
        for text in ["", "[]", "\"response.create\"", #"{"type":"response.create""#, #"{"type":"response.create","input":[{"a":1}"#,
                     #"{"type" "x"}"#, #"{"model":"gpt}"#, #"{"mo\xdel":"gpt-5.5"}"#, #"{"model\u12":"gpt-5.5"}"#] {
            #expect(summary(text) == nil, "\(text)")
        }
    }
}
