import Foundation
@testable import Gateway
import PoolCore
import Testing

/// Chat Completions ↔ Responses, without the network.
@Suite(.timeLimit(.minutes(1))) struct ChatTranslationTests {
    static func chat(_ text: String) -> JSONValue { JSONValue.parse(Array(text.utf8))! }

    @Test func messagesToolsAndFormatsBecomeTheirResponsesEquivalents() throws {
        let translation = try ChatRequestTranslation(chat: Self.chat(#"""
            {"model":"gpt-5.5","stream":true,"stream_options":{"include_usage":true},"reasoning_effort":"low","max_tokens":300,
             "tool_choice":{"type":"function","function":{"name":"lookup"}},
             "response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}},
             "tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}],
             "messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"No lists."}]},
              {"role":"user","content":[{"type":"text","text":"Look"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"high"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":1}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"found"}]}
            """#))
        #expect(translation.stream && translation.includeUsage)
        let body = translation.body
        #expect(body["instructions"]?.stringValue == "Be brief.\n\nNo lists.")
        #expect(body["stream"]?.boolValue == true && body["store"]?.boolValue == false)
        #expect(body["reasoning"]?["effort"]?.stringValue == "low")
        #expect(body["max_output_tokens"]?.numberValue == 300)
        #expect(body["tool_choice"] == .object(["type": .string("function"), "name": .string("lookup")]))
        #expect(body["tools"]?.arrayValue?.first?["name"]?.stringValue == "lookup")
        #expect(body["text"]?["format"]?["type"]?.stringValue == "json_schema")
        let input = try #require(body["input"]?.arrayValue)
        #expect(input.count == 3)
        #expect(input[0]["content"]?.arrayValue?[1] == .object(["type": .string("input_image"), "image_url": .string("https://example.com/a.png"),
                                                                "detail": .string("high")]))
        #expect(input[1]["type"]?.stringValue == "function_call" && input[1]["call_id"]?.stringValue == "call_1")
        #expect(input[2] == .object(["type": .string("function_call_output"), "call_id": .string("call_1"), "output": .string("found")]))
        // The same opening gives the same key; `user` names it outright.
        let again = try ChatRequestTranslation(chat: Self.chat(#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"No lists."}]},{"role":"user","content":"other"}]}"#))
        #expect(again.stickyKey == translation.stickyKey)
        #expect(try ChatRequestTranslation(chat: Self.chat(#"{"model":"m","user":"u1","messages":[{"role":"user","content":"x"}]}"#)).stickyKey == "chat-user-u1")
    }

    @Test func whatHasNoEquivalentIsRefusedByName() {
        for (body, parameter) in [(#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.2}"#, "temperature"),
                                  (#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}"#, "n"),
                                  (#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
                                  (#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}"#, "messages[0]"),
                                  (#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#, "messages[0]")] {
            #expect(throws: ChatRequestTranslation.Refusal.self) { _ = try ChatRequestTranslation(chat: Self.chat(body)) }
            do {
                _ = try ChatRequestTranslation(chat: Self.chat(body))
            } catch {
                #expect(error.parameter == parameter, "\(body)")
            }
        }
    }

    static let answer = [
        #"{"type":"response.created","response":{"id":"resp_abc","model":"gpt-5.5","status":"in_progress"}}"#,
        #"{"type":"response.output_text.delta","delta":"Hel"}"#, #"{"type":"response.output_text.delta","delta":"lo"}"#,
        #"{"type":"response.completed","response":{"id":"resp_abc","status":"completed","usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":13}}}"#,
    ].map { "event: x\ndata: \($0)\n\n" }.joined()

    @Test func aStreamArrivingInAnyPiecesBecomesChunksUsageAndDone() throws {
        var translator = ChatStreamTranslator(model: "gpt-5.5", stream: true, includeUsage: true, created: 1)
        var output: [UInt8] = []
        // One byte at a time: events are put together whatever the reads.
        for byte in Self.answer.utf8 { output += translator.consume([byte]) }
        output += translator.finish()
        let events = String(decoding: output, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]")
        let chunks = events.dropLast().map { JSONValue.parse(Array($0.dropFirst(6).utf8))! }
        #expect(chunks.first?["choices"]?.arrayValue?.first?["delta"]?["role"]?.stringValue == "assistant")
        #expect(chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined() == "Hello")
        #expect(chunks.allSatisfy { $0["id"]?.stringValue == "chatcmpl-abc" })
        #expect(chunks.dropLast().last?["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "stop")
        let usage = try #require(chunks.last?["usage"])
        #expect(chunks.last?["choices"]?.arrayValue == [])
        #expect(usage["prompt_tokens"]?.numberValue == 10 && usage["completion_tokens"]?.numberValue == 3 && usage["total_tokens"]?.numberValue == 13)
        #expect(usage["prompt_tokens_details"]?["cached_tokens"]?.numberValue == 4)
    }

    @Test func withoutStreamingOneCompletionWithToolCalls() throws {
        var translator = ChatStreamTranslator(model: "gpt-5.5", stream: false, includeUsage: false, created: 1)
        let events = [
            #"{"type":"response.created","response":{"id":"resp_x","status":"in_progress"}}"#,
            #"{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","call_id":"call_9","name":"lookup","arguments":"{\"q\":\"a\"}"}}"#,
            #"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":2}}}"#,
        ].map { "data: \($0)\r\n\r\n" }.joined()
        #expect(translator.consume(Array(events.utf8)).isEmpty, "nothing until the end")
        let completion = try #require(JSONValue.parse(translator.finish()))
        let choice = try #require(completion["choices"]?.arrayValue?.first)
        #expect(choice["finish_reason"]?.stringValue == "tool_calls")
        #expect(choice["message"]?["content"] == .null)
        let call = try #require(choice["message"]?["tool_calls"]?.arrayValue?.first)
        #expect(call["id"]?.stringValue == "call_9" && call["function"]?["name"]?.stringValue == "lookup")
        #expect(call["function"]?["arguments"]?.stringValue == #"{"q":"a"}"#)
        #expect(completion["usage"]?["total_tokens"]?.numberValue == 7)
    }

    @Test func anAnswerCutByTheTokenLimitEndsWithLength() throws {
        var translator = ChatStreamTranslator(model: "gpt-5.5", stream: false, includeUsage: false, created: 1)
        let events = [
            #"{"type":"response.created","response":{"id":"resp_y"}}"#, #"{"type":"response.output_text.delta","delta":"Once upon"}"#,
            #"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":5,"output_tokens":4}}}"#,
        ].map { "data: \($0)\n\n" }.joined()
        _ = translator.consume(Array(events.utf8))
        let completion = try #require(JSONValue.parse(translator.finish()))
        #expect(completion["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "length")
        #expect(completion["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "Once upon")
        #expect(completion["usage"]?["completion_tokens"]?.numberValue == 4)
    }
}
